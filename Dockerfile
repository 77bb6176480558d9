# Gamify container image: one image, the subcommand picks the role
# (`serve`, `api`, `project`, `inbound`, `replay`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged user that owns the data directory.
RUN groupadd --system --gid 10001 gamify \
    && useradd --system --uid 10001 --gid gamify --home-dir /home/gamify --create-home \
       --shell /usr/sbin/nologin gamify \
    && mkdir -p /data \
    && chown gamify:gamify /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY projections ./projections
COPY schemas ./schemas
RUN pip install --no-cache-dir . \
    && rm -rf /src/build

WORKDIR /home/gamify
USER gamify

ENV GAMIFY_HTTP_HOST=0.0.0.0 \
    GAMIFY_DATA_DIR=/data
VOLUME /data
EXPOSE 8080

ENTRYPOINT ["gamify"]
CMD ["serve"]
