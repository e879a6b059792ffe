#!/usr/bin/env bash
# Debian's Chromium for the web demo's browser tests (pytest -m browser), installed only where it
# is missing; Playwright drives it through its executable path and downloads no browser of its own.
#   bash scripts/install_chromium.sh        (as root, or with sudo available)
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium) is there"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get here; install Chromium with your system's package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install_chromium: run as root (apt-get needs it)" >&2; exit 1; }
    sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
echo "chromium: installed $(command -v chromium)"
