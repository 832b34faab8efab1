#!/usr/bin/env bash
# The bash completions of fikit-broker and fikit-run offer the commands, options and values they
# should, with the options read from the programs' own --help, and name only commands, policies
# and substrates the broker's --help knows.
# Usage: completion_test.sh BIN_DIR COMPLETION_DIR
set -uo pipefail
bin=$1 dir=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
helpers=/usr/share/bash-completion/bash_completion
[ -r $helpers ] || { echo "SKIP: bash-completion is not installed"; exit 77; }
# shellcheck disable=SC1090
source $helpers
source "$dir/fikit-broker"
source "$dir/fikit-run"
PATH=$bin:$PATH

# complete FUNCTION WORD... : the completions of the last WORD (may be ''), one per line.
complete_words() {
  local fn=$1
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort
}
# expect WANT... -- FUNCTION WORD... : every WANT is among the completions.
expect() {
  local want=()
  while [ "$1" != -- ]; do want+=("$1"); shift; done
  shift
  local got
  got=$(complete_words "$@")
  for w in "${want[@]}"; do
    grep -qx -- "$w" <<<"$got" || fail "'${*:2}' completes to [${got//$'\n'/ }], without '$w'"
  done
}
# expect_only WANT... -- FUNCTION WORD... : the completions are exactly WANT.
expect_only() {
  local want=()
  while [ "$1" != -- ]; do want+=("$1"); shift; done
  shift
  local got
  got=$(complete_words "$@" | tr '\n' ' ')
  [ "$got" = "$(printf '%s\n' "${want[@]}" | sort | tr '\n' ' ')" ] ||
    fail "'${*:2}' completes to [$got], not [${want[*]}]"
}

expect_only start status stop -- _fikit_broker fikit-broker st
expect_only start stop status profile -- _fikit_broker fikit-broker ''
expect_only start status -- _fikit_broker fikit-broker --socket /tmp/x.sock sta
expect --policy --policy-opts -- _fikit_broker fikit-broker start --pol
expect --socket -- _fikit_broker fikit-broker stop --so
expect_only fikit none oracle priority -- _fikit_broker fikit-broker start --policy ''
expect_only mps timeslice auto -- _fikit_broker fikit-broker start --substrate ''
expect_only list show export import -- _fikit_broker fikit-broker profile ''
expect_only high normal low 0 1 2 3 4 5 6 7 -- _fikit_run fikit-run -p ''
expect --priority --name --socket --lib --no-mps -- _fikit_run fikit-run --
expect echo -- _fikit_run fikit-run -p high -- ech
expect echo -- _fikit_run fikit-run --priority low --name x ech

# What the completion lists, the broker's --help must know.
help=$(fikit-broker --help 2>&1)
for word in start stop status profile list show export import fikit priority none oracle mps \
  timeslice auto; do
  grep -qw -- "$word" <<<"$help" || fail "the completion offers '$word', which fikit-broker --help lacks"
done
echo "ok"
