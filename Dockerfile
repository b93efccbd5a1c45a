# Escalator: one image for every process (`escalator worker`, `escalator connect http`,
# `escalator projection`, and the CLI). Build from the repository root:
#   docker build -t escalator:local .
# The command picks the process; set ESCALATOR_HEALTHCHECK_URL to that process's /healthz
# (compose and the Helm chart do): worker :6066, ingress :8080, projection :9464.

FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY kafkaio kafkaio
COPY metricsio metricsio
COPY rules rules
COPY connectors connectors
COPY streams streams
COPY queues queues
COPY escalator escalator
# The `postgres` extra brings psycopg, the PostgreSQL driver of the case store.
RUN python -m venv /opt/escalator \
    && /opt/escalator/bin/pip install ".[postgres]"

FROM python:3.12-slim
ENV PATH=/opt/escalator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ESCALATOR_DATA_DIR=/var/lib/escalator \
    ESCALATOR_RULES=/etc/escalator/rules \
    ESCALATOR_HTTP_HOST=0.0.0.0 \
    ESCALATOR_HEALTHCHECK_URL=http://127.0.0.1:6066/healthz
RUN groupadd --system --gid 10001 escalator \
    && useradd --system --uid 10001 --gid escalator --home-dir /var/lib/escalator \
       --create-home --shell /usr/sbin/nologin escalator
COPY --from=build /opt/escalator /opt/escalator
COPY examples/rules /etc/escalator/rules
USER 10001:10001
WORKDIR /var/lib/escalator
EXPOSE 6066 8080 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ESCALATOR_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["escalator"]
CMD ["worker"]
