#!/usr/bin/env bash
# The bash completions of fikit-broker, fikit-run and fikit-top offer the commands, options and
# values they should, with the options read from the programs' own --help; the commands, profile
# actions and options that take a value are checked against every command's --help, so that the
# completion cannot drift from the programs.
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
source "$dir/fikit-top"
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
expect_only list show export import rm -- _fikit_broker fikit-broker profile ''
expect --profile-dir --uid -- _fikit_broker fikit-broker profile show --
expect --uid -- _fikit_broker fikit-broker profile rm --
expect_only admit refuse -- _fikit_broker fikit-broker start --over-ceiling ''
expect_only start stop status profile -- _fikit_broker fikit-broker --log-level info ''
expect --socket --delay --once -- _fikit_top fikit-top --
expect_only high normal low 0 1 2 3 4 5 6 7 -- _fikit_run fikit-run -p ''
expect --priority --name --socket --lib --no-mps -- _fikit_run fikit-run --
expect echo -- _fikit_run fikit-run -p high -- ech
expect echo -- _fikit_run fikit-run --priority low --name x ech

# Against the programs' help: the commands and profile actions it offers are exactly those of
# --help, and every option any command's --help shows with a value is skipped with its value.
section() {  # the first words of the lines of section $1 of the text on stdin
  awk -v s="$1" '$0 ~ "^" s ":?$" { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }'
}
cmds=$(fikit-broker --help 2>&1 | section commands | sort | tr '\n' ' ')
[ -n "$cmds" ] || fail "no commands found in fikit-broker --help"
[ "$(complete_words _fikit_broker fikit-broker '' | tr '\n' ' ')" = "$cmds" ] ||
  fail "the completion's commands differ from fikit-broker --help's: $cmds"
actions=$(fikit-broker profile --help 2>&1 | section Subcommands | sort | tr '\n' ' ')
[ -n "$actions" ] || fail "no actions found in fikit-broker profile --help"
[ "$(complete_words _fikit_broker fikit-broker profile '' | tr '\n' ' ')" = "$actions" ] ||
  fail "the completion's profile actions differ from fikit-broker profile --help's: $actions"
value_opts=$(sed -n "s/^ *local value_opts='\(.*\)'$/\1/p" "$dir/fikit-broker" | tr '|' '\n')
[ -n "$value_opts" ] || fail "no value_opts in the completion"
for c in "" $cmds $(for a in $actions; do echo "profile:$a"; done); do
  for o in $(fikit-broker ${c//:/ } --help 2>&1 |
    sed -nE 's/^ +(-[a-zA-Z], ?)?(--[a-z-]+)[ =][A-Z].*/\2/p'); do
    grep -qx -- "$o" <<<"$value_opts" ||
      fail "fikit-broker ${c//:/ } --help: $o takes a value, the completion does not skip it"
  done
done
for o in $(fikit-top --help 2>&1 | sed -nE 's/^ +(-[a-zA-Z], ?)?(--[a-z-]+)[ =][A-Z].*/\2/p'); do
  grep -qE -- "(^| )$o( |\)|$)" "$dir/fikit-top" ||
    fail "fikit-top --help: $o takes a value, the completion does not know it"
done

# What the completion lists, the broker's --help must know.
help=$(fikit-broker --help 2>&1)
for word in start stop status profile list show export import fikit priority none oracle mps \
  timeslice auto; do
  grep -qw -- "$word" <<<"$help" || fail "the completion offers '$word', which fikit-broker --help lacks"
done
echo "ok"
