# FedMef aggregation server: a Flower SuperLink that runs the FedMef ServerApp (aggregation,
# prune/grow, per-round export). Clients (SuperNodes, phones) connect to port 9091.
#
#   docker build -t fedmef-server .
#   docker run -p 9091:9091 -v fedmef-state:/var/lib/fedmef fedmef-server
#   flwr run . <connection> --stream      # connection: address = "HOST:9091" in $FLWR_HOME/config.toml
#
# TLS: mount certificates and override the command, e.g.
#   docker run ... fedmef-server --ssl-ca-certfile /certs/ca.crt --ssl-certfile /certs/server.pem \
#       --ssl-keyfile /certs/server.key --host 0.0.0.0 --port 9091 --database /var/lib/fedmef/state.db
FROM python:3.11-slim

# CPU-only torch: PyPI's default torch wheel for Linux bundles CUDA (several GB).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLWR_HOME=/var/lib/fedmef/flwr

WORKDIR /opt/fedmef
COPY requirements.lock ./
RUN pip install --extra-index-url "${TORCH_INDEX}" -r requirements.lock

COPY pyproject.toml README.md ./
COPY fedmef ./fedmef
COPY server ./server
COPY python_client ./python_client
COPY export ./export
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/fedmef fedmef \
    && mkdir -p /var/lib/fedmef/flwr /var/lib/fedmef/runs \
    && chown -R fedmef /var/lib/fedmef

USER 10001
# run directories (output-dir = "runs") land in the volume
WORKDIR /var/lib/fedmef
VOLUME ["/var/lib/fedmef"]
EXPOSE 9091
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 9091), 3)"]

# One port serves the Fleet, Control and ServerAppIo APIs (flwr 1.41). Dependencies are baked in:
# never let the SuperLink `uv sync` torch for every run.
ENTRYPOINT ["flower-superlink", "--disable-runtime-dependency-installation"]
CMD ["--insecure", "--host", "0.0.0.0", "--port", "9091", "--database", "/var/lib/fedmef/state.db"]
