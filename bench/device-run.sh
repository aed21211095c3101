#!/usr/bin/env bash
# The device run in one command: check-ops over the op registry, conformance of every vendored
# fixture case and the kernel benches, all on WebGPU, into ONE JSON file (adapter name, vendor,
# architecture, features, limits, every row). See bench/results/README.md.
#
#   bench/device-run.sh [--quick] [--large] [--no-conform] [--out FILE]
#       run (default FILE: $OUT/device-run.json when $OUT is set, else
#       bench/results/device-run-latest.json). --quick: small shapes, no timed repetitions.
#   bench/device-run.sh --pack
#       run HERE, where the npm dependencies are installed: writes .devbench/ (ignored by git) with
#       what a bare machine lacks: this node binary, one bundle of the run, Dawn's dawn.node and
#       the fixtures, each xz-compressed; carry it to the device machine.
#   bench/device-run.sh --packed [...]
#       run from .devbench/ only, even where node or node_modules exist (to test the packed path).
#
# Nothing is installed and nothing is fetched: node comes from $COSMOS_NODE, the PATH or
# .devbench/node.xz; the code runs from the sources (node_modules with tsx and webgpu) or from
# .devbench/device-run.mjs. Without either it says so and exits 2. Exit status 1 when a kernel or
# a conformance case disagreed (the JSON is written either way).
set -uo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
cd "$here/.." || exit 2
root=$PWD
devbench=${COSMOS_DEVBENCH:-$root/.devbench}

die() { echo "device-run: $*" >&2; exit 2; }

pack=0
packed=0
args=()
while (($#)); do
  case $1 in
    --pack) pack=1 ;;
    --packed) packed=1 ;;
    --quick|--large|--no-conform) args+=("$1") ;;
    --out|--fixtures)
      (($# >= 2)) || die "$1: needs a value"
      args+=("$1" "$2"); shift ;;
    --out=*|--fixtures=*) args+=("$1") ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "$1: unknown flag (--quick, --large, --no-conform, --out FILE, --fixtures DIR, --pack, --packed)" ;;
  esac
  shift
done

# xz -d of $1 into $2, by xz or else Python's lzma (the GPU machines have python3; xz may be absent)
unxz_to() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" >"$2"
  elif command -v python3 >/dev/null 2>&1; then python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else return 1
  fi
}

# ------------------------------------------------------------------ --pack (here, with the npm dependencies)
if ((pack)); then
  command -v node >/dev/null 2>&1 || die "--pack: node is not on the PATH here"
  command -v xz >/dev/null 2>&1 || die "--pack: xz is needed to pack (apt-get install xz-utils)"
  [[ -d node_modules/webgpu && -x node_modules/.bin/esbuild ]] || die "--pack: node_modules (webgpu, esbuild) missing: run npm ci first"
  [[ $(uname -m) == x86_64 ]] || echo "device-run: warning: this machine is $(uname -m); the GPU machines are x86-64, so the packed node will not run there" >&2
  rm -rf "$devbench" && mkdir -p "$devbench/node_modules/webgpu/dist/linux-x64" || die "--pack: cannot write $devbench"
  node_bin=$(node -e 'process.stdout.write(process.execPath)')
  xz -T0 -6 -c "$node_bin" >"$devbench/node.xz" || die "--pack: compressing $node_bin failed"
  node_modules/.bin/esbuild bench/device-run.ts --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --log-level=warning --outfile="$devbench/device-run.mjs" \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    || die "--pack: bundling bench/device-run.ts failed"
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$devbench/node_modules/webgpu/"
  xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$devbench/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  tar -C test -cf - fixtures | xz -T0 -6 >"$devbench/fixtures.tar.xz" || die "--pack: packing test/fixtures failed"
  git rev-parse HEAD >"$devbench/commit" 2>/dev/null || true
  echo "packed $(du -sh "$devbench" | cut -f1) into $devbench:"
  (cd "$devbench" && find . -type f -exec du -h {} + | sort -k2)
  cat <<EOF

On the device machine (the run tool), carry .devbench and run:
  bash bench/device-run.sh --out \$OUT/device-run.json
The working tree travels too (64 MiB at most): the vendored test/fixtures and weights are larger
than that together, so move them out of the checkout for the call (they travel packed here) and
put them back after it. Without a Vulkan loader there, also carry .gl (see the device README).
EOF
  exit 0
fi

# ------------------------------------------------------------------ node
node_bin=
if ((!packed)) && [[ -n ${COSMOS_NODE:-} ]]; then
  [[ -x $COSMOS_NODE ]] || die "COSMOS_NODE=$COSMOS_NODE is not an executable"
  node_bin=$COSMOS_NODE
elif ((!packed)) && command -v node >/dev/null 2>&1; then
  node_bin=$(command -v node)
elif [[ -f $devbench/node.xz ]]; then
  node_bin=${TMPDIR:-/tmp}/cosmos-device-run/node
  mkdir -p "${node_bin%/*}" && unxz_to "$devbench/node.xz" "$node_bin" && chmod +x "$node_bin" \
    || die "cannot unpack $devbench/node.xz (neither xz nor python3 here)"
fi
[[ -n $node_bin ]] || die "node not found: not on the PATH, no COSMOS_NODE, no $devbench/node.xz. Install Node >= 20, or run 'bench/device-run.sh --pack' on a machine with the project's npm dependencies and carry .devbench"
major=$("$node_bin" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "$node_bin does not run here (wrong architecture?)"
((major >= 20)) || die "$node_bin is Node $major; Node >= 20 is needed"

# ------------------------------------------------------------------ the code and its dependencies
if ((!packed)) && [[ -d node_modules/tsx && -d node_modules/webgpu ]]; then
  cmd=("$node_bin" --import tsx bench/device-run.ts)
elif [[ -f $devbench/device-run.mjs ]]; then
  dawn=$devbench/node_modules/webgpu/dist/linux-x64/dawn.node
  if [[ ! -f $dawn ]]; then
    unxz_to "$dawn.xz" "$dawn" || die "cannot unpack $dawn.xz"
  fi
  cmd=("$node_bin" "$devbench/device-run.mjs")
else
  die "the dependencies are missing: no node_modules (tsx, webgpu) and no $devbench/device-run.mjs; run 'bench/device-run.sh --pack' where they are installed and carry .devbench"
fi

# the vendored fixtures, when they travelled packed rather than in the tree
if [[ ! -d test/fixtures && -f $devbench/fixtures.tar.xz ]]; then
  echo "device-run: unpacking the fixtures from $devbench/fixtures.tar.xz" >&2
  tmp_tar=${TMPDIR:-/tmp}/cosmos-device-run/fixtures.tar
  mkdir -p "${tmp_tar%/*}" && unxz_to "$devbench/fixtures.tar.xz" "$tmp_tar" && tar -C test -xf "$tmp_tar" && rm -f "$tmp_tar" \
    || die "cannot unpack $devbench/fixtures.tar.xz"
fi

# a GPU machine without a Vulkan loader: the loader packages carried in .gl (device README)
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && compgen -G '.gl/*.deb' >/dev/null; then
  echo "device-run: installing the carried Vulkan / EGL loaders from .gl" >&2
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -f $icd && -z ${VK_DRIVER_FILES:-} ]]; then export VK_DRIVER_FILES=$icd; fi
egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [[ -f $egl && -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} ]]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless}

if [[ -z ${COSMOS_COMMIT:-} ]]; then
  COSMOS_COMMIT=$(git rev-parse HEAD 2>/dev/null || cat "$devbench/commit" 2>/dev/null || true)
  export COSMOS_COMMIT
fi
echo "device-run: $("$node_bin" --version) ${cmd[*]:1} ${args[*]}" >&2
exec "${cmd[@]}" "${args[@]}"
