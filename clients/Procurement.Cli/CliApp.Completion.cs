namespace Procurement.Cli;

/// <summary>
/// Shell completion: each script hands the line up to the cursor, without the program's name, to
/// System.CommandLine's <c>[suggest:POSITION]</c> directive and offers what it prints.
/// </summary>
public static partial class CliApp
{
    public static readonly IReadOnlyDictionary<string, string> CompletionScripts = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bash"] = """
            # procurement completion for bash: source <(procurement completion bash)
            _procurement_complete()
            {
                local line="${COMP_LINE:0:COMP_POINT}"
                line="${line#*[[:space:]]}"
                local IFS=$'\n'
                COMPREPLY=( $(compgen -W "$(procurement "[suggest:${#line}]" "$line" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
            }
            complete -o default -F _procurement_complete procurement
            """,
        ["zsh"] = """
            # procurement completion for zsh: source <(procurement completion zsh)
            _procurement_complete()
            {
                local line="${BUFFER[1,CURSOR]}"
                line="${line#* }"
                local -a candidates
                candidates=("${(@f)$(procurement "[suggest:${#line}]" "$line" 2>/dev/null)}")
                compadd -a candidates
            }
            compdef _procurement_complete procurement
            """,
        ["pwsh"] = """
            # procurement completion for PowerShell: procurement completion pwsh | Out-String | Invoke-Expression
            Register-ArgumentCompleter -Native -CommandName procurement -ScriptBlock {
                param($wordToComplete, $commandAst, $cursorPosition)
                $line = $commandAst.ToString()
                $line = $line.Substring(0, [Math]::Min($cursorPosition - $commandAst.Extent.StartOffset, $line.Length))
                $line = $line -replace '^\S+\s*', ''
                procurement "[suggest:$($line.Length)]" "$line" | ForEach-Object {
                    [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
                }
            }
            """,
    };

    private static Task<int> Completion(CommandContext c)
    {
        var shell = c.Args.Positional1("SHELL");
        if (!CompletionScripts.TryGetValue(shell, out var script))
        {
            throw new UsageException($"SHELL must be one of {string.Join(", ", CompletionScripts.Keys)}, not '{shell}'");
        }

        c.Out.Line(script);
        return Task.FromResult(0);
    }
}
