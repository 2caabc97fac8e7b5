# Kuntur worker / simulator image: slim, non-root.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream stream
COPY features features
COPY models models
COPY config config
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 kuntur
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER kuntur
WORKDIR /home/kuntur
ENV KUNTUR_DATA_DIR=/home/kuntur/data KUNTUR_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["kuntur"]
CMD ["worker"]
