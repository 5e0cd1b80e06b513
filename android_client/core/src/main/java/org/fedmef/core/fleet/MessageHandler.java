package org.fedmef.core.fleet;

import org.fedmef.core.records.RecordDict;

/**
 * What a node does with one instruction: turns its content into the reply's content.
 *
 * <p>The node's loop calls it for every pulled message; a thrown exception becomes a Flower error
 * reply (code 1, reason = the exception's message). It may take long (a training round): the
 * node keeps heartbeating meanwhile.
 */
public interface MessageHandler {
    /**
     * @param messageType the instruction's Flower message type ({@code train}, {@code evaluate}, …)
     * @param content     the instruction's records
     * @return the reply's records
     */
    RecordDict handle(String messageType, RecordDict content) throws Exception;
}
