# hack/busybox.sh — sourced by ./dev, the benches and hack/gpu-node-check.sh:
# busybox:latest built from Debian's busybox-static, the one image every
# offline setup here uses (same layout as testkit::busybox_rootfs).
#
#   busybox_rootfs DIR [BUSYBOX]   the binary, a link per applet, /etc/passwd
#                                  and /etc/group, mount points; DIR is created
#   busybox_import BOSUN ROOT DIR  imports DIR as busybox:latest into state root
#                                  ROOT (CMD sh, the usual PATH)

busybox_rootfs() {
  local fs=$1 bb=${2:-/bin/busybox} a
  mkdir -p "$fs"/{bin,sbin,etc,proc,sys,dev,tmp,root,www,var}
  cp "$bb" "$fs/bin/busybox"
  for a in $("$bb" --list); do
    [ "$a" = busybox ] || [ -e "$fs/bin/$a" ] || ln -s busybox "$fs/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$fs/etc/group"
}

busybox_import() {
  "$1" --root "$2" image import --rootfs "$3" -c 'CMD ["sh"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    busybox:latest >/dev/null
}
