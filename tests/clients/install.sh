#!/usr/bin/env bash
# Installs what the test suite needs, if it is missing (`make test` runs it first):
#   apt: rclone, s3cmd, curl (and python3-venv when `python3 -m venv` cannot work) for the
#        S3 client tests; jq, script (util-linux) and chromium for the tool and page tests;
#        dnsmasq-base (without recommends) for tests/names.rs
#   pip: tests/clients/requirements.txt (boto3, aws-cli) into a venv, by default target/s3-venv
# Idempotent; parallel callers wait on a lock. Usage: install.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:-$root/target/s3-venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$(dirname "$venv")/.s3-clients.lock"
flock 9

need_apt=()
command -v rclone >/dev/null || need_apt+=(rclone)
command -v s3cmd >/dev/null || need_apt+=(s3cmd)
command -v curl >/dev/null || need_apt+=(curl)
command -v jq >/dev/null || need_apt+=(jq)
command -v script >/dev/null || need_apt+=(util-linux)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
if [ ! -x "$venv/bin/python" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
need_apt_bare=()
command -v dnsmasq >/dev/null || need_apt_bare+=(dnsmasq-base)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_apt_bare[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: ${need_apt[*]} ${need_apt_bare[*]}; install them with: sudo apt-get install -y ${need_apt[*]} ${need_apt_bare[*]}" >&2
    exit 1
  fi
  echo "installing with apt: ${need_apt[*]} ${need_apt_bare[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  [ ${#need_apt[@]} -eq 0 ] || apt-get install -y -q "${need_apt[@]}" >&2
  # Only the dnsmasq program (dnsmasq-base, not the dnsmasq service package), nothing more.
  [ ${#need_apt_bare[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${need_apt_bare[@]}" >&2
fi

# The venv is good when it holds exactly the pinned requirements.
if [ -x "$venv/bin/python" ] && cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  exit 0
fi
echo "creating $venv with $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$venv/requirements.txt"
