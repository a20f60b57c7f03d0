# Stand-in for the official nginx image (classifier-deploy.sh's proxy) where no registry serves
# it: Debian's nginx package laid out like the official image, where conf.d/*.conf is the whole
# site configuration, logs go to the container's output and nginx runs in the foreground.
# tests/deploy/engine.py builds it on the stand-in (or official) Python base and tags it with
# the official name, so the deploy script runs unchanged.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# Unpinned: bookworm's nginx moves with its security updates, and any of them stands in.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* /etc/nginx/conf.d/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
