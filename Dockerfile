# surd in a container, installed by scripts/setup.sh: the same install CI runs (.ci/run) and the README uses.
#   docker build -t surd .                                            # CUDA runtime base: model stages on GPUs
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" -v surd-cache:/cache surd run pipelines/sample.yaml
#   docker build --build-arg BASE_IMAGE=python:3.12-slim -t surd:cpu .   # a CPU-only base works too
#   scripts/docker-check.sh                                           # builds it here (a local base when no registry
#                                                                     # answers) and runs the sample inside as uid 10001
ARG BASE_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

# Package indexes for this build only (a mirror, a local index served on the build host): build args, never ENV, so
# nothing of them is kept in the image's configuration. Unset ones leave pip's defaults.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
ARG PIP_NO_INDEX

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    SURD_VENV=/opt/surd/venv \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache \
    PATH=/opt/surd/venv/bin:$PATH

WORKDIR /opt/surd/src
# Dependencies first, in their own layer, from only the files that name them: a change to the source reuses this
# layer (torch is not reinstalled). The package itself is installed editable from empty placeholders (its package,
# the README its metadata names) and finds the real source once it is copied in below. As root, setup.sh installs
# python3 + python3-venv with apt when the base image has no Python (the CUDA images, a debootstrap base).
COPY pyproject.toml ./
COPY .ci/constraints.txt .ci/
COPY scripts/setup.sh scripts/
RUN mkdir -p surd \
    && touch surd/__init__.py README.md \
    && scripts/setup.sh --venv /opt/surd/venv --no-browser \
    && rm -rf /var/lib/apt/lists/* /root/.cache

COPY . .
# Only checks now (about a second): the dependencies above are up to date and the venv's surd is this source.
RUN scripts/setup.sh --venv /opt/surd/venv --no-browser \
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
