# surd in a container, installed by scripts/setup.sh: the same install CI runs (.ci/run) and the README uses.
#   docker build -t surd .                                            # CUDA runtime base: model stages on GPUs
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" -v surd-cache:/cache surd run pipelines/sample.yaml
#   docker build --build-arg BASE_IMAGE=python:3.12-slim -t surd:cpu .   # a CPU-only base works too
ARG BASE_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    SURD_VENV=/opt/surd/venv \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache \
    PATH=/opt/surd/venv/bin:$PATH

WORKDIR /opt/surd/src
COPY . .
# As root, setup.sh installs python3 + python3-venv with apt when the base image has no Python (the CUDA images).
RUN scripts/setup.sh --venv /opt/surd/venv --no-browser \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 surd \
    && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash surd \
    && mkdir -p /work /cache \
    && chown 10001:10001 /work /cache \
    && chmod 0777 /cache

USER 10001:10001
WORKDIR /work
VOLUME ["/work", "/cache"]
ENTRYPOINT ["surd"]
CMD ["--help"]
