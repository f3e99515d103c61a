package main

// completionScripts are what lollypops --completion SHELL prints. Each
// calls the command being completed (the same wrapper, hence the same
// inventory) as "CMD __complete WORD... CURRENT" and reads its answer: a
// mode line, then "VALUE<tab>DESCRIPTION" lines (see completion.go).
var completionScripts = map[string]string{"bash": bashScript, "zsh": zshScript, "fish": fishScript}

const bashScript = `# bash completion for lollypops. Load it with:
#   source <(lollypops --completion bash)
_lollypops() {
    local line=${COMP_LINE:0:COMP_POINT} w i sep
    local -a words=()
    # Bash splits host1:rebuild and REBUILD_ACTION=boot at ':' and '='
    # (COMP_WORDBREAKS); join the pieces that no blank separates, so that
    # lollypops sees the words as the command will.
    for ((i = 0; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        sep=0
        if [[ $line == [[:space:]]* ]]; then
            sep=1
            line=${line#"${line%%[![:space:]]*}"}
        fi
        ((i == COMP_CWORD)) && w=${w:0:${#line}}
        if ((i == 0 || sep)); then
            words+=("$w")
        else
            words[${#words[@]}-1]+=$w
        fi
        line=${line:${#w}}
    done
    # Readline replaces the end of the word after its last break character
    # (keeping a '@' there, as for host names): cut the rest off the answers.
    local word=${words[${#words[@]}-1]} c
    local strip=${#word}
    while ((strip > 0)); do
        c=${word:strip-1:1}
        [[ $c != [\"\'] && $COMP_WORDBREAKS == *"$c"* ]] && break
        ((strip--))
    done
    ((strip > 0)) && [[ ${word:strip-1:1} == @ ]] && ((strip--))
    local cur=${word:strip}
    local cmd=${words[0]}
    [[ $cmd == "~/"* ]] && cmd=$HOME/${cmd#"~/"}
    local out
    out=$("$cmd" __complete "${words[@]:1}" 2>/dev/null) || return 0
    local -a lines=()
    while IFS= read -r w; do lines+=("$w"); done <<<"$out"
    COMPREPLY=()
    case ${lines[0]} in
    files | dirs)
        compopt -o filenames 2>/dev/null
        while IFS= read -r w; do COMPREPLY+=("$w"); done < <(compgen "-${lines[0]:0:1}" -- "$cur")
        return 0
        ;;
    esac
    for w in "${lines[@]:1}"; do
        w=${w%%$'\t'*}
        [[ -n $w ]] && COMPREPLY+=("${w:strip}")
    done
    # REBUILD_ACTION= and --flag= wait for their value.
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _lollypops lollypops
`

const zshScript = `#compdef lollypops
# zsh completion for lollypops. Load it (after compinit) with:
#   source <(lollypops --completion zsh)
# or save it as _lollypops in a directory of $fpath.
_lollypops() {
    local cmd=${words[1]} out mode line value desc
    local -a plain open
    out=$(${~cmd} __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    local -a lines=("${(@f)out}")
    mode=${lines[1]}
    case $mode in
    files) compset -P '--*='; _files; return ;;
    dirs) compset -P '--*='; _files -/; return ;;
    esac
    for line in "${(@)lines[2,-1]}"; do
        [[ -n $line ]] || continue
        value=${line%%$'\t'*}
        desc=${line#*$'\t'}
        value=${value//:/\\:}
        if [[ $value == *= ]]; then
            open+=("$value:$desc")
        else
            plain+=("$value:$desc")
        fi
    done
    (( ${#plain} )) && _describe -t lollypops lollypops plain
    # REBUILD_ACTION= and --flag= wait for their value: no space after them.
    (( ${#open} )) && _describe -t lollypops lollypops open -S ''
    return 0
}
if [[ ${funcstack[1]} == _lollypops ]]; then
    _lollypops "$@"
else
    compdef _lollypops lollypops
fi
`

const fishScript = `# fish completion for lollypops. Load it with:
#   lollypops --completion fish | source
# or save it as ~/.config/fish/completions/lollypops.fish.
function __lollypops_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete $tokens[2..-1] $cur 2>/dev/null)
    or return
    switch "$out[1]"
        case files dirs
            set -l value (string replace -r -- '^--[^=]*=' '' $cur)
            set -l head (string sub -l (math (string length -- "$cur") - (string length -- "$value")) -- $cur)
            for path in (__fish_complete_path $value)
                if test "$out[1]" = files; or test -d (string split -f1 \t -- $path)
                    printf '%s%s\n' $head $path
                end
            end
        case '*'
            printf '%s\n' $out[2..-1]
    end
end
complete -c lollypops -f -a '(__lollypops_complete)'
`
