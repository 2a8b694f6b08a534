#!/usr/bin/env bash
# The copier against cp -a and rsync -a, side by side in one run (issue 17).
#
# Cases: a 5,000-file tree of mixed sizes a few folders deep (make-tree.py)
# and one 1 GiB file of random bytes, each on tmpfs and on ext4. Tools:
# pool-copier (release build) with its default -j and with -j 2, cp -a,
# rsync -a. Each repetition runs every tool once, in a rotating order, into
# a fresh destination; the table gives the median wall time (and min-max)
# and the median CPU time (user + system, children included).
#
# Fair play, stated: the sources are written once and stay in the page
# cache (nothing drops caches; every tool reads warm data); before each
# timed copy `sync` flushes ext4, so no tool pays for another's writeback;
# the copy itself is timed without a final sync, as a user runs these
# commands. Deleted inodes: ext4 skips inodes deleted in the last minutes
# when it allocates new ones (recently_deleted() in its inode allocator),
# and after 5,000 deletions that search costs whoever creates files next
# several seconds of system time - so the copies of the tree are all kept
# until the case is over, and nothing is deleted between two timed runs. On a shared machine the load
# average is printed with the table: treat the figures as provisional.
#
# usage: demos/bench/copier-vs-cp.sh [REPS]     (default 5)
#        (space: about 4 x REPS x 160 MiB plus 2 GiB on each file system)
# env:   TMPFS_DIR (default /dev/shm), EXT4_DIR (default /var/tmp),
#        COPIER (default target/release/pool-copier), CASES ("tree big"),
#        EXT4_FRESH=1: measure ext4 on a new 8 GiB image made with mkfs.ext4
#        in EXT4_DIR and loop-mounted (root only), removed at the end - so
#        that no earlier deletions (see "deleted inodes") weigh on the run
# needs: a release build (cargo build --release -p demos), python3, rsync
#        (installed separately: apt-get install rsync); this script installs
#        nothing.
set -euo pipefail

reps=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
copier=${COPIER:-$root/target/release/pool-copier}
tmpfs_dir=${TMPFS_DIR:-/dev/shm}
ext4_dir=${EXT4_DIR:-/var/tmp}
cases=${CASES:-tree big}

for tool in "$copier" cp rsync python3; do
    command -v "$tool" >/dev/null || {
        echo "copier-vs-cp: $tool not found (build with 'cargo build --release -p demos'; apt-get install rsync)" >&2
        exit 2
    }
done

work_dirs=()
mounted=""
cleanup() {
    for d in "${work_dirs[@]}"; do
        rm -rf "$d"
    done
    if [ -n "$mounted" ]; then
        umount "$mounted" && rmdir "$mounted" && rm -f "$mounted.img"
    fi
}
trap cleanup EXIT INT TERM

ext4_note="$ext4_dir ($(df -T "$ext4_dir" | awk 'NR == 2 { print $2 }'))"
if [ "${EXT4_FRESH:-}" = 1 ]; then
    mounted=$(mktemp -d "$ext4_dir/copier-ext4-XXXXXX")
    truncate -s 8G "$mounted.img"
    mkfs.ext4 -q -F "$mounted.img"
    mount -o loop "$mounted.img" "$mounted"
    ext4_dir=$mounted
    ext4_note="a fresh ext4 image, loop-mounted"
fi

# Prints "wall_seconds cpu_seconds" for one run of "$@".
timed() {
    local t0 t1 out
    out=$(mktemp)
    t0=$(date +%s%N)
    /usr/bin/time -f "%U %S" -o "$out" "$@" >/dev/null
    t1=$(date +%s%N)
    awk -v w="$(( (t1 - t0) / 1000 ))" '{ printf "%.3f %.3f\n", w / 1e6, $1 + $2 }' "$out"
    rm -f "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

tools=("pool-copier" "pool-copier -j2" "cp -a" "rsync -a")
run_tool() { # tool src dest
    case $1 in
    "pool-copier") timed "$copier" --quiet "$2" "$3" ;;
    "pool-copier -j2") timed "$copier" --quiet -j 2 "$2" "$3" ;;
    "cp -a") timed cp -a "$2" "$3" ;;
    "rsync -a") timed rsync -a "$2/" "$3/" ;;
    esac
}

echo "# copier-vs-cp: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), $reps repetitions"
echo "# $(cp --version | head -1); $(rsync --version | head -1)"
echo "# tmpfs: $tmpfs_dir; ext4: $ext4_note"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| file system | case | tool | wall s (median) | min-max | CPU s (median) | wall vs cp -a |"
echo "|---|---|---|---:|---:|---:|---:|"
for fs in tmpfs ext4; do
    base=$([ "$fs" = tmpfs ] && echo "$tmpfs_dir" || echo "$ext4_dir")
    dir=$(mktemp -d "$base/copier-bench-XXXXXX")
    work_dirs+=("$dir")
    for c in $cases; do
        src="$dir/src-$c"
        if [ "$c" = tree ]; then
            python3 "$here/make-tree.py" "$src" 5000
        else
            mkdir -p "$src"
            head -c $((1 << 30)) /dev/urandom >"$src/big.bin"
        fi
        sync
        declare -A walls=() cpus=()
        for ((r = 0; r < reps; r++)); do
            for ((k = 0; k < ${#tools[@]}; k++)); do
                t=${tools[$(((k + r) % ${#tools[@]}))]}
                dest="$dir/dest-$r-$k"
                # One big file may go at once; a tree stays until the case
                # is over (see "deleted inodes" above).
                [ "$c" = big ] && rm -rf "$dir"/dest-*
                sync
                read -r w u < <(run_tool "$t" "$src" "$dest")
                walls[$t]+="$w "
                cpus[$t]+="$u "
            done
        done
        rm -rf "$dir"/dest-* "$src"
        cp_median=$(tr ' ' '\n' <<<"${walls["cp -a"]}" | grep . | median)
        for t in "${tools[@]}"; do
            w=$(tr ' ' '\n' <<<"${walls[$t]}" | grep . | median)
            lo=$(tr ' ' '\n' <<<"${walls[$t]}" | grep . | sort -g | head -1)
            hi=$(tr ' ' '\n' <<<"${walls[$t]}" | grep . | sort -g | tail -1)
            u=$(tr ' ' '\n' <<<"${cpus[$t]}" | grep . | median)
            ratio=$(awk -v a="$w" -v b="$cp_median" 'BEGIN { printf "%.2fx", a / b }')
            label=$([ "$c" = tree ] && echo "5,000 files" || echo "1 GiB file")
            echo "| $fs | $label | $t | $w | $lo-$hi | $u | $ratio |"
        done
        unset walls cpus
    done
done
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
