#!/usr/bin/env bash
# Installs what the test suite needs, if it is missing (`make test` runs it first):
#   apt: rclone, s3cmd, restic, curl (and python3-venv when `python3 -m venv` cannot work) for the
#        S3 client tests; jq, script (util-linux), chromium and a font for the tool and page
#        tests. Without recommends: chromium's would bring a desktop (upower, udev, cups
#        helpers, about 540 MB) that headless use does not need;
#        dnsmasq-base (the program, not the service) for tests/names.rs.
#   apt: fuse3 (fusermount3), rsync, samba, smbclient and minidlna for the mount test
#        (tests/mount.rs).
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
command -v restic >/dev/null || need_apt+=(restic)
command -v curl >/dev/null || need_apt+=(curl)
command -v jq >/dev/null || need_apt+=(jq)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
command -v rsync >/dev/null || need_apt+=(rsync)
# tests/mount.rs: Samba and minidlna serving the mounted folder.
command -v smbd >/dev/null || need_apt+=(samba)
command -v smbclient >/dev/null || need_apt+=(smbclient)
command -v minidlnad >/dev/null || need_apt+=(minidlna)
command -v script >/dev/null || need_apt+=(util-linux)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
# Without recommends no font comes with chromium: the screenshot would show empty boxes.
find /usr/share/fonts -name '*.[ot]tf' 2>/dev/null | grep -q . || need_apt+=(fonts-dejavu-core)
if [ ! -x "$venv/bin/python" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
command -v dnsmasq >/dev/null || need_apt+=(dnsmasq-base)
# tests/names.rs: a network namespace for the mDNS test, and its responder.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v python3 >/dev/null || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing: ${need_apt[*]}; install them with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${need_apt[*]}" >&2
    exit 1
  fi
  echo "installing with apt (no recommends): ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # An index mid-sync on the mirror (often a foreign architecture added for `make cross`)
  # fails the update though the packages needed here are listed: retry, then go on with
  # the indexes apt has; the install itself says if a package is really missing.
  for try in 1 2 3; do
    apt-get update -q >&2 && break
    echo "apt-get update failed (try $try of 3)" >&2
    [ "$try" = 3 ] || sleep 10
  done
  apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2
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
