#!/bin/sh
# Installs what sbx needs to build, run and test on Debian 12 (run as root). Idempotent.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# libnftnl/libmnl: the daemon builds each sandbox's nftables ruleset (transparent capture).
# zlib: the review queue reads git push packs to tell a fast-forward from a force push.
# curl, wget, git, ca-certificates, awscli: real clients the network tests run inside sandboxes;
# python3-botocore: the mock AWS endpoint verifies signatures with botocore's own signer.
pkgs="build-essential pkg-config git libjansson-dev libsqlite3-dev libseccomp-dev libssl-dev
      libnftnl-dev libmnl-dev zlib1g-dev uidmap iproute2 procps util-linux python3 python3-pytest clang
      libclang-rt-14-dev curl wget ca-certificates awscli python3-botocore"
# Node.js (the tests' fetch and npm clients): Debian's, unless the machine already has one.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
