# syntax=docker/dockerfile:1
# MedAI Flow on Ray's image, from the repository root:
#   CPU:  docker build -t medai-flow:0.1.0 .
#   GPU:  docker build --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu \
#                      --build-arg EXTRAS="[gpu]" -t medai-flow:0.1.0-gpu .
# The `gpu` extra brings the CUDA and cuDNN libraries ONNX Runtime was built against
# (onnxruntime-gpu[cuda,cudnn]); the node needs NVIDIA's driver and container toolkit.
# No secret and no model is baked in: secrets come from the environment (Kubernetes
# secrets, each node only its own), models from the store mounted at /models.
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu

# Build stage: the project and every dependency as wheels, so that the runtime stage
# installs offline and carries no compiler, pip cache or source tree.
FROM ${RAY_IMAGE} AS build
WORKDIR /home/ray/build
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 serve_app ./serve_app
COPY --chown=1000:100 deployments ./deployments
COPY --chown=1000:100 medai_cli ./medai_cli
ARG EXTRAS=""
RUN pip wheel --no-cache-dir --wheel-dir /home/ray/wheels ".${EXTRAS}"

FROM ${RAY_IMAGE}
ARG EXTRAS=""
ARG VERSION=0.1.0
# NOTE: Ray's image already holds ray[serve] at the version pinned; pip keeps it.
RUN --mount=type=bind,from=build,source=/home/ray/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --no-index --find-links=/tmp/wheels \
        "medai-flow${EXTRAS}==${VERSION}"
WORKDIR /home/ray/app
COPY --chown=1000:100 serve_config.yaml ./
ENV MEDAI_ENVIRONMENT=production \
    MEDAI_DATA_DIR=/home/ray/data \
    MEDAI_MODEL_STORE=/models \
    PYTHONDONTWRITEBYTECODE=1
RUN mkdir -p /home/ray/data
# Ray's image user `ray`, by number so that Kubernetes' runAsNonRoot can check it.
USER 1000:100
EXPOSE 8000
# /healthz answers while the ingress is up; Kubernetes also probes /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["serve", "run", "serve_config.yaml"]
