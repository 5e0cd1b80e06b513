package org.fedmef.core.records;

/**
 * One entry of a {@link RecordDict}: an {@link ArrayRecord}, a {@link ConfigRecord} or a
 * {@link MetricRecord} (Flower's three record types).
 */
public interface Record {
}
