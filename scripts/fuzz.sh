#!/usr/bin/env bash
# Fuzzes bwgate: builds the cargo-fuzz targets in fuzz/ and runs each for
# SECONDS (default 30), starting from its committed corpus
# (fuzz/corpus/<target>/) and the reproducers of fixed findings
# (fuzz/regressions/<target>/), which are thus replayed on every run.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Exit status: 0 when no target found anything, 1 when one crashed, hung
# or ran out of memory. Its input is then in fuzz/artifacts/<target>/;
# replay it with the built binary,
#   fuzz/target/<host triple>/release/TARGET fuzz/artifacts/TARGET/crash-…
#
# Inputs that reach new code are written to fuzz/target/new-corpus/<target>/,
# not into the committed corpus. FUZZ_MERGE=1 folds them into
# fuzz/corpus/<target>/ afterwards, minimized (libFuzzer's set-cover merge):
# use it for long runs by hand, then commit the corpus.
#
# Build: release with debug assertions and overflow checks (cargo-fuzz's
# default), no sanitizer and 16 codegen units: the code under test is safe
# Rust (the C in SQLite and aws-lc would not be instrumented anyway), and
# this builds about twice and runs about three times as fast as the
# AddressSanitizer build. FUZZ_BUILD_FLAGS replaces these flags:
# FUZZ_BUILD_FLAGS="" is cargo-fuzz's default (AddressSanitizer, one
# codegen unit), for a sanitized run by hand.
#
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. It is installed (cargo install --locked) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
case "$seconds" in
  '' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS---sanitizer none --codegen-units 16}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "no fuzz targets (cargo fuzz list)" >&2
  exit 1
fi

echo "== cargo fuzz build ${build_flags[*]} (${targets[*]})"
build_start=$SECONDS
for t in "${targets[@]}"; do
  cargo fuzz build "${build_flags[@]}" "$t"
done
echo "   built in $((SECONDS - build_start)) s"

failed=()
for t in "${targets[@]}"; do
  new="fuzz/target/new-corpus/$t"
  mkdir -p "$new" "fuzz/corpus/$t" "fuzz/regressions/$t" "fuzz/artifacts/$t"
  echo "== $t: ${seconds} s"
  log="fuzz/target/fuzz-$t.log"
  # The binary `cargo fuzz run` would start, started directly. New inputs
  # go to the first directory; the committed ones are only read.
  ok=1
  if "fuzz/target/$host/release/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$new" "fuzz/corpus/$t" "fuzz/regressions/$t" >"$log" 2>&1; then
    grep -a -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$log" | tail -4 || true
  else
    ok=0
    failed+=("$t")
    # The panic message or sanitizer report, then libFuzzer's summary.
    grep -a -m1 -A20 -E 'panicked at|==[0-9]+==ERROR|ERROR: libFuzzer' "$log" || tail -n 40 "$log"
    echo "!! $t found a problem; input(s), replay with fuzz/target/$host/release/$t INPUT:"
    ls -1 "fuzz/artifacts/$t"/ 2>/dev/null | sed "s|^|   fuzz/artifacts/$t/|"
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$ok" = 1 ]; then
    # libFuzzer's set-cover merge, on edges only (no hit-count variants):
    # the fewest inputs that reach every edge the old corpus and the new
    # inputs reach, a third of what `cargo fuzz cmin` keeps.
    echo "== $t: merging new inputs into fuzz/corpus/$t, minimized"
    merged="fuzz/target/merged-corpus/$t"
    rm -rf "$merged" && mkdir -p "$merged"
    "fuzz/target/$host/release/$t" -set_cover_merge=1 -use_counters=0 "$merged" "fuzz/corpus/$t" "$new" \
      >"fuzz/target/merge-$t.log" 2>&1
    find "fuzz/corpus/$t" -type f -delete
    mv "$merged"/* "fuzz/corpus/$t"/
    echo "   $(find "fuzz/corpus/$t" -type f | wc -l) inputs, $(du -s --apparent-size --block-size=K "fuzz/corpus/$t" | cut -f1)"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: no findings (${targets[*]}, ${seconds} s each)"
