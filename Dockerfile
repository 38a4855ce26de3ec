# The flyteconnect server image: `flyteconnect serve` on gRPC port 8000, Prometheus metrics on 9090.
# Not built on the machine this project is developed on (no container engine there): see docs/deploying.md.
#
#   docker build -t flyteconnect:0.1.0 .
#   docker build -t my-connectors:1 --build-arg EXTRA_PIP_PACKAGES="my-connectors==1.2.3" .
ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: a virtualenv holding flyteconnect and its extras, so the runtime stage needs no pip, compiler or cache.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY src /src/src
# The README's install command, pointed at this source tree; connector packages are added with EXTRA_PIP_PACKAGES.
ARG EXTRA_PIP_PACKAGES=""
RUN /opt/venv/bin/pip install "/src[all]" ${EXTRA_PIP_PACKAGES}

# Runtime stage: the same slim base, the virtualenv, and an unprivileged numeric user (so Kubernetes' runAsNonRoot can
# verify it without a passwd lookup).
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
RUN groupadd --system --gid 10001 flyteconnect \
 && useradd --system --uid 10001 --gid 10001 --no-log-init --create-home flyteconnect
USER 10001:10001
WORKDIR /home/flyteconnect
EXPOSE 8000 9090
# Kubernetes probes the gRPC health service (grpc.health.v1) on port 8000; no HEALTHCHECK here.
ENTRYPOINT ["flyteconnect", "serve"]
CMD ["--port", "8000", "--metrics-port", "9090"]
