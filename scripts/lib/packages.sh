# Debian packages Capstan needs, found missing and installed in one place; sourced by
# scripts/serve (to build and run the server) and scripts/test (everything the tests drive).
#
#   capstan_need_server_packages      # adds what building the server needs to capstan_missing
#   capstan_have CMD || capstan_missing+=(PKG)
#   capstan_install_missing WHO       # apt-get as root, otherwise names the packages and exits 1

capstan_missing=()

capstan_have() { command -v "$1" >/dev/null 2>&1; }

# The server links the system zstd and xz libraries; SwiftPM finds their headers with pkg-config.
capstan_need_server_packages() {
  capstan_have pkg-config || capstan_missing+=(pkg-config)
  pkg-config --exists libzstd 2>/dev/null || capstan_missing+=(libzstd-dev)
  pkg-config --exists liblzma 2>/dev/null || capstan_missing+=(liblzma-dev)
}

capstan_install_missing() {
  local who=$1
  [ ${#capstan_missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && capstan_have apt-get; then
    echo "$who: installing ${capstan_missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${capstan_missing[@]}" >/dev/null
    capstan_missing=()
  else
    echo "$who: missing ${capstan_missing[*]}; install them (Debian: apt-get install ${capstan_missing[*]})" >&2
    exit 1
  fi
}
