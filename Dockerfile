# Kuntur worker / simulator image: slim, non-root, pinned dependencies.
#   docker build -t kuntur .        docker run --rm kuntur --help
# Python matches the interpreter the test suite runs on; requirements-docker.txt pins every
# runtime dependency (tests/unit/test_deploy.py keeps it complete).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/kuntur
COPY requirements-docker.txt /tmp/requirements-docker.txt
RUN /opt/kuntur/bin/pip install --no-deps -r /tmp/requirements-docker.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream stream
COPY features features
COPY models models
COPY config config
RUN /opt/kuntur/bin/pip install --no-deps . && /opt/kuntur/bin/pip check

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 --user-group kuntur \
    && mkdir -p /home/kuntur/data && chown kuntur:kuntur /home/kuntur/data
COPY --from=build /opt/kuntur /opt/kuntur
ENV PATH=/opt/kuntur/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KUNTUR_DATA_DIR=/home/kuntur/data \
    KUNTUR_WEB_HOST=0.0.0.0 \
    KUNTUR_WEB_PORT=6066
USER kuntur
WORKDIR /home/kuntur
VOLUME ["/home/kuntur/data"]
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=2)"]
ENTRYPOINT ["kuntur"]
CMD ["worker"]
