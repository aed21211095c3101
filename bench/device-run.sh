#!/usr/bin/env bash
# The device run in one command: check-ops over the op registry, conformance of every vendored
# fixture case and the kernel benches, all on WebGPU, into ONE JSON file (adapter name, vendor,
# architecture, features, limits, every row). See bench/results/README.md.
#
#   bench/device-run.sh [--quick] [--large] [--no-conform | --conform-only] [--no-tune] [--out FILE]
#       run (default FILE: $OUT/device-run.json when $OUT is set, else
#       bench/results/device-run-latest.json). --quick: small shapes, no timed repetitions.
#       The matmul is tuned first (cosmos-ts tune: the table and the matmul rows before / after
#       go in the file, "tuning"); --no-tune leaves that out.
#   bench/device-run.sh --pack
#       run HERE, where the npm dependencies are installed: writes .devbench/ (ignored by git):
#       base/ (this node binary, one bundle of the run, Dawn's dawn.node, xz-compressed) and
#       call-1/, call-2/ ... (the fixture components, as many as fit one 64 MiB call each), and
#       prints the calls to make. The first call runs everything, the others --conform-only.
#   bench/device-run.sh --packed [...]
#       run from .devbench/ only, even where node or node_modules exist (tests the packed path).
#   bench/device-run.sh --merge FIRST.json MORE.json... --out FILE
#       one file of the calls: FIRST with the conformance results of the others added.
#
# Nothing is installed and nothing is fetched: node comes from $COSMOS_NODE, the PATH or
# .devbench/base/node.xz; the code runs from the sources (node_modules with tsx and webgpu) or
# from .devbench/base/device-run.mjs. Without either it says so and exits 2. Exit status 1 when a
# kernel or a conformance case disagreed (the JSON is written either way).
set -uo pipefail

here=${BASH_SOURCE[0]%/*}
[[ $here == "${BASH_SOURCE[0]}" ]] && here=.
cd "$here/.." || exit 2
root=$PWD
devbench=${COSMOS_DEVBENCH:-$root/.devbench}

die() { echo "device-run: $*" >&2; exit 2; }

pack=0
packed=0
merge=0
args=()
while (($#)); do
  case $1 in
    --pack) pack=1 ;;
    --packed) packed=1 ;;
    --quick|--large|--no-conform|--conform-only|--no-tune) args+=("$1") ;;
    --merge) merge=1; args+=("$1") ;;
    --out|--fixtures)
      (($# >= 2)) || die "$1: needs a value"
      args+=("$1" "$2"); shift ;;
    --out=*|--fixtures=*) args+=("$1") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "$1: unknown flag (--quick, --large, --no-conform, --conform-only, --no-tune, --out FILE, --fixtures DIR, --pack, --packed, --merge)" ;;
    *) ((merge)) || die "$1: unexpected argument"; args+=("$1") ;;
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
# .devbench/base: node, the bundle, dawn.node (carried by every call); .devbench/call-N: the fixture
# components (one archive each) that fit one call beside the base and the working tree.
if ((pack)); then
  command -v node >/dev/null 2>&1 || die "--pack: node is not on the PATH here"
  command -v xz >/dev/null 2>&1 || die "--pack: xz is needed to pack (apt-get install xz-utils)"
  [[ -d node_modules/webgpu && -x node_modules/.bin/esbuild ]] || die "--pack: node_modules (webgpu, esbuild) missing: run npm ci first"
  [[ $(uname -m) == x86_64 ]] || echo "device-run: warning: this machine is $(uname -m); the GPU machines are x86-64, so the packed node will not run there" >&2
  base=$devbench/base
  rm -rf "$devbench" && mkdir -p "$base/node_modules/webgpu/dist/linux-x64" || die "--pack: cannot write $devbench"
  node_bin=$(node -e 'process.stdout.write(process.execPath)')
  xz -T0 -9 -c "$node_bin" >"$base/node.xz" || die "--pack: compressing $node_bin failed"
  node_modules/.bin/esbuild bench/device-run.ts --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --external:benchmark --log-level=warning --outfile="$base/device-run.mjs" \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    || die "--pack: bundling bench/device-run.ts failed"
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$base/node_modules/webgpu/"
  # benchmark.js finds lodash and platform by its own require (it breaks when bundled): beside it, as installed
  for p in benchmark/benchmark.js platform/platform.js lodash/lodash.js; do
    mkdir -p "$base/node_modules/${p%/*}" && cp "node_modules/$p" "node_modules/${p%/*}/package.json" "$base/node_modules/${p%/*}/"
  done
  xz -T0 -9 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$base/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  git rev-parse HEAD >"$base/commit" 2>/dev/null || true

  # what travels besides .devbench: the tracked files but the fixtures and weights (moved out for
  # the call), and untracked files git does not ignore
  tree=$( { git ls-files -z --exclude-standard -co | grep -zv '^test/fixtures/\|^weights/' | xargs -0 stat -c %s 2>/dev/null; echo 0; } | awk '{s += $1} END {print s}')
  base_bytes=$(du -sb "$base" | cut -f1)
  limit=$((64 * 1024 * 1024))
  budget=$((limit - tree - base_bytes - 2 * 1024 * 1024))
  ((budget > 0)) || die "--pack: the working tree ($tree bytes) and the base ($base_bytes) leave no room for fixtures in a 64 MiB call"
  # one archive per fixture component that holds conformance cases (folders with case.json)
  mkdir -p "$devbench/parts"
  for comp in $(find test/fixtures -mindepth 2 -name case.json -printf '%P\n' | cut -d/ -f1 | sort -u); do
    tar -C test/fixtures -cf - "$comp" | xz -T0 -9 >"$devbench/parts/$comp.tar.xz" || die "--pack: packing test/fixtures/$comp failed"
  done
  # first fit, largest first: as few calls as the budget allows
  declare -a room=()
  while read -r size file; do
    ((size <= budget)) || die "--pack: test/fixtures/${file%.tar.xz} alone ($size bytes packed) exceeds one call's room ($budget bytes)"
    placed=0
    for i in "${!room[@]}"; do
      if ((room[i] >= size)); then
        room[i]=$((room[i] - size)); mkdir -p "$devbench/call-$((i + 1))"; mv "$devbench/parts/$file" "$devbench/call-$((i + 1))/"; placed=1; break
      fi
    done
    if ((!placed)); then
      room+=($((budget - size))); mkdir -p "$devbench/call-${#room[@]}"; mv "$devbench/parts/$file" "$devbench/call-${#room[@]}/"
    fi
  done < <(cd "$devbench/parts" && stat -c '%s %n' ./*.tar.xz | sed 's# \./# #' | sort -rn)
  rmdir "$devbench/parts"
  calls=${#room[@]}
  echo "packed into $devbench (the working tree that travels besides: $((tree / 1024)) KiB; one call holds 64 MiB):"
  (cd "$devbench" && du -sh base call-* | sed 's/^/  /')
  echo
  echo "On the device machine (the run tool), $calls call(s), one right after the other (the machine stays warm):"
  for ((i = 1; i <= calls; i++)); do
    if ((i == 1)); then what="--out \$OUT/device-run.json"; else what="--conform-only --out \$OUT/device-run-$i.json"; fi
    echo "  carry [\".devbench/base\", \".devbench/call-$i\"]; command: bash bench/device-run.sh $what"
  done
  more=
  for ((i = 2; i <= calls; i++)); do more+=" device-run-$i.json"; done
  echo "(carry \".gl\" as well where the machine has no Vulkan loader: see the device README). The tracked"
  echo "test/fixtures and weights do not fit a call: move them out of the checkout for the calls"
  echo "(mv test/fixtures weights /tmp/) and back after. Then, here, one file of the runs:"
  echo "  bash bench/device-run.sh --merge device-run.json$more --out bench/results/<card>-device-run.json"
  exit 0
fi

# ------------------------------------------------------------------ node
node_bin=
if ((!packed)) && [[ -n ${COSMOS_NODE:-} ]]; then
  [[ -x $COSMOS_NODE ]] || die "COSMOS_NODE=$COSMOS_NODE is not an executable"
  node_bin=$COSMOS_NODE
elif ((!packed)) && command -v node >/dev/null 2>&1; then
  node_bin=$(command -v node)
elif [[ -f $devbench/base/node.xz ]]; then
  node_bin=${TMPDIR:-/tmp}/cosmos-device-run/node
  if [[ ! -x $node_bin ]]; then
    mkdir -p "${node_bin%/*}" && unxz_to "$devbench/base/node.xz" "$node_bin.tmp" && chmod +x "$node_bin.tmp" && mv "$node_bin.tmp" "$node_bin" \
      || die "cannot unpack $devbench/base/node.xz (neither xz nor python3 here)"
  fi
fi
[[ -n $node_bin ]] || die "node not found: not on the PATH, no COSMOS_NODE, no $devbench/base/node.xz. Install Node >= 20, or run 'bench/device-run.sh --pack' on a machine with the project's npm dependencies and carry .devbench"
major=$("$node_bin" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "$node_bin does not run here (wrong architecture?)"
((major >= 20)) || die "$node_bin is Node $major; Node >= 20 is needed"

# ------------------------------------------------------------------ the code and its dependencies
if ((!packed)) && [[ -d node_modules/tsx && -d node_modules/webgpu ]]; then
  cmd=("$node_bin" --import tsx bench/device-run.ts)
elif [[ -f $devbench/base/device-run.mjs ]]; then
  dawn=$devbench/base/node_modules/webgpu/dist/linux-x64/dawn.node
  if [[ ! -f $dawn ]]; then
    { unxz_to "$dawn.xz" "$dawn.tmp" && mv "$dawn.tmp" "$dawn"; } || die "cannot unpack $dawn.xz"
  fi
  cmd=("$node_bin" "$devbench/base/device-run.mjs")
else
  die "the dependencies are missing: no node_modules (tsx, webgpu) and no $devbench/base/device-run.mjs; run 'bench/device-run.sh --pack' where they are installed and carry .devbench"
fi

# the vendored fixtures, when they travelled packed (each call carries some components) rather than in the tree
for a in "$devbench"/call-*/*.tar.xz; do
  [[ -f $a ]] || continue
  comp=${a##*/}; comp=${comp%.tar.xz}
  [[ -d test/fixtures/$comp ]] && continue
  echo "device-run: unpacking test/fixtures/$comp from $a" >&2
  tmp_tar=${TMPDIR:-/tmp}/cosmos-device-run/$comp.tar
  { mkdir -p test/fixtures "${tmp_tar%/*}" && unxz_to "$a" "$tmp_tar" && tar -C test/fixtures -xf "$tmp_tar" && rm -f "$tmp_tar"; } \
    || die "cannot unpack $a"
done

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
export COSMOS_ROOT=$root

if [[ -z ${COSMOS_COMMIT:-} ]]; then
  COSMOS_COMMIT=$(git rev-parse HEAD 2>/dev/null || cat "$devbench/base/commit" 2>/dev/null || true)
  export COSMOS_COMMIT
fi
echo "device-run: $("$node_bin" --version) ${cmd[*]:1} ${args[*]}" >&2
exec "${cmd[@]}" "${args[@]}"
