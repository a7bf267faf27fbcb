#!/usr/bin/env bash
# Installs the servers and tools the test suite talks to, into $STRATA_TOOLS
# (default ~/.cache/strata-tools), reusing what is already there. Safe to re-run.
#
#   MinIO           S3 server            (go install, ~7 min on 2 cores the first time)
#   fake-gcs-server GCS emulator         (go install)
#   Azurite         Azure Blob emulator  (npm)
#   Debian packages: FUSE, AWS CLI, boto3, s3cmd, etcd, coreutils used by tests
#
# With the argument "bench" it also installs the peers the side-by-side
# benchmark suite compares Strata with (make bench):
#   rclone          (go install, ~8 min on 2 cores the first time)
#   s3fs            (Debian)
#
# With the argument "helm" it installs only helm, which the Helm chart's
# checks use (deploy/helm/chartcheck runs `helm lint --strict` with it):
#   helm            (go install, a few minutes on 2 cores the first time)
set -euo pipefail

BENCH=0
[[ ${1:-} == bench ]] && BENCH=1

TOOLS=${STRATA_TOOLS:-$HOME/.cache/strata-tools}
BIN=$TOOLS/bin
mkdir -p "$BIN"

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.35.0
RCLONE_VERSION=v1.75.1
HELM_VERSION=v4.3.2

log() { printf '[install-tools] %s\n' "$*" >&2; }

go_tool() { # name module version
	local name=$1 mod=$2 ver=$3 stamp="$BIN/.$1.version"
	if [[ -x $BIN/$name && -f $stamp && $(cat "$stamp") == "$ver" ]]; then
		return
	fi
	log "building $name $ver (cached in $BIN afterwards)"
	(cd / && GOBIN=$BIN GOFLAGS=-buildvcs=false go install "$mod@$ver")
	echo "$ver" >"$stamp"
}

if [[ ${1:-} == helm ]]; then
	go_tool helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION"
	log "helm ready in $BIN"
	exit 0
fi

go_tool minio github.com/minio/minio "$MINIO_VERSION" &
minio_pid=$!
go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"
if ((BENCH)); then
	go_tool rclone github.com/rclone/rclone "$RCLONE_VERSION"
fi

if [[ ! -x $TOOLS/azurite/node_modules/.bin/azurite-blob || $(cat "$TOOLS/azurite/.version" 2>/dev/null) != "$AZURITE_VERSION" ]]; then
	log "installing azurite $AZURITE_VERSION"
	mkdir -p "$TOOLS/azurite"
	(cd "$TOOLS/azurite" && npm install --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null)
	echo "$AZURITE_VERSION" >"$TOOLS/azurite/.version"
fi
ln -sf "$TOOLS/azurite/node_modules/.bin/azurite-blob" "$BIN/azurite-blob"

if [[ ${STRATA_SKIP_APT:-0} != 1 ]] && command -v apt-get >/dev/null; then
	pkgs=(fuse3 etcd-server awscli s3cmd python3-boto3 python3-torch python3-torchvision python3-numpy python3-pil)
	((BENCH)) && pkgs+=(s3fs)
	missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "apt-get install ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

wait "$minio_pid"
log "tools ready in $BIN"
