# FedMef aggregation server: a Flower SuperLink that runs the FedMef ServerApp (aggregation,
# prune/grow, per-round export). SuperNodes (Python or phones) connect to port 9091, over TLS and
# with SuperNode authentication unless you explicitly pass --insecure. docs/deployment.md has the
# whole story (certificates, compose.yaml, volumes, health, results).
#
#   docker build -t fedmef-server .
#   python -m server.certs certs --host YOUR.HOST --supernodes 2          # a test CA + keys
#   docker run -d -p 9091:9091 -v fedmef-state:/var/lib/fedmef -v "$PWD/certs:/etc/fedmef/certs:ro" fedmef-server
#
# `--target supernode` builds a SuperNode image from the same files (compose.yaml uses both).
# Podman/buildah: build with `--format docker`, or the OCI format drops the HEALTHCHECK.

# The official image, pinned by digest (the digest of python:3.11-slim when this was written).
ARG BASE_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${BASE_IMAGE} AS runtime
# CPU-only torch: PyPI's default torch wheel for Linux pulls CUDA libraries (several GB).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG FEDMEF_UID=10001
ARG FEDMEF_GID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLWR_HOME=/var/lib/fedmef/flwr \
    FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1

WORKDIR /opt/fedmef
# Exactly the locked packages (--no-deps: nothing resolved here); the second step adds only what
# TORCH_INDEX's torch wheel itself needs (nothing for the CPU wheel, the CUDA libraries for PyPI's).
COPY requirements-server.lock ./
RUN pip install --no-cache-dir --no-deps --extra-index-url "${TORCH_INDEX}" -r requirements-server.lock \
    && pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY fedmef ./fedmef
COPY server ./server
COPY python_client ./python_client
COPY export ./export
# --no-build-isolation: build with the locked setuptools instead of whatever version pip would fetch
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && groupadd --system --gid "${FEDMEF_GID}" fedmef \
    && useradd --system --uid "${FEDMEF_UID}" --gid "${FEDMEF_GID}" --no-create-home \
        --home-dir /var/lib/fedmef --shell /usr/sbin/nologin fedmef \
    && mkdir -p /var/lib/fedmef/flwr /var/lib/fedmef/runs /etc/fedmef/certs \
    && chown -R "${FEDMEF_UID}:${FEDMEF_GID}" /var/lib/fedmef

# run directories (output-dir = "runs") and the SuperLink's state.db land in the volume
WORKDIR /var/lib/fedmef
VOLUME ["/var/lib/fedmef"]


FROM runtime AS supernode
ARG FEDMEF_UID=10001
ARG FEDMEF_GID=10001
COPY --chown=root:root requirements-supernode.lock /opt/fedmef/
RUN pip install --no-cache-dir --no-deps -r /opt/fedmef/requirements-supernode.lock
USER ${FEDMEF_UID}:${FEDMEF_GID}
# --superlink, TLS/authentication and --node-config come from the command (compose.yaml)
ENTRYPOINT ["flower-supernode"]


# The default target (last stage): the SuperLink.
FROM runtime AS superlink
ARG FEDMEF_UID=10001
ARG FEDMEF_GID=10001
USER ${FEDMEF_UID}:${FEDMEF_GID}
# One port serves the Fleet, Control and ServerAppIo APIs (flwr 1.41).
EXPOSE 9091
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 9091), 3)"]
# No arguments: TLS + SuperNode authentication with the certificates in /etc/fedmef/certs (a clear
# error when they are missing). Arguments replace that and go to flower-superlink as they are.
ENTRYPOINT ["python", "-m", "server.container"]
CMD []
