using System.CommandLine;

namespace Procurement.Cli;

/// <summary>
/// The System.CommandLine tree of every <see cref="CommandSpec"/>: a command per group, a subcommand per
/// verb, the global options recursive from the root. Help is the CLI's own text (usage line, example,
/// exit codes), the same for <c>--help</c> and a usage mistake.
/// </summary>
public sealed class CommandTree
{
    private readonly Dictionary<Command, CommandSpec> _specs = [];
    private readonly IReadOnlyList<CommandSpec> _all;

    private CommandTree(IReadOnlyList<CommandSpec> specs)
    {
        _all = specs;
        Root = new RootCommand("procurement — operate the Procurement service");
        Root.Options.Add(new Option<string>("--endpoint") { Recursive = true, HelpName = "URL" });
        Root.Options.Add(new Option<string>("--api-key") { Recursive = true, HelpName = "KEY" });
        Root.Options.Add(new Option<string>("--config") { Recursive = true, HelpName = "FILE" });
        Root.Options.Add(new Option<string>("--output", "-o") { Recursive = true, HelpName = "table|json" }.AcceptOnlyFromAmong("table", "json"));
        foreach (var group in specs.GroupBy(s => s.Group))
        {
            var groupSpecs = group.ToList();
            var groupCommand = new Command(group.Key, groupSpecs.Count == 1 && groupSpecs[0].Verb.Length == 0 ? groupSpecs[0].Summary : $"{group.Key} commands");
            Root.Subcommands.Add(groupCommand);
            foreach (var spec in groupSpecs)
            {
                var command = spec.Verb.Length == 0 ? groupCommand : new Command(spec.Verb, spec.Summary);
                if (command != groupCommand)
                {
                    groupCommand.Subcommands.Add(command);
                }

                Args.Declare(command, spec.Usage, spec.Flags);
                _specs[command] = spec;
            }
        }
    }

    public RootCommand Root { get; }

    public static CommandTree Build(IReadOnlyList<CommandSpec> specs) => new(specs);

    public CommandSpec? SpecOf(Command command) => _specs.GetValueOrDefault(command);

    public string Help(Command command)
    {
        if (_specs.TryGetValue(command, out var spec))
        {
            return CliApp.CommandHelp(spec);
        }

        if (command == Root)
        {
            return "procurement — operate the Procurement service\n\nUsage: procurement <command> [<verb>] [options]\n\nCommands:\n" +
                string.Join("\n", _all.GroupBy(s => s.Group).Select(g => $"  {g.Key,-12} {string.Join(", ", g.Select(s => s.Verb).Where(v => v.Length > 0))}")) +
                "\n\nRun 'procurement <command> <verb> --help' for a command's options and an example.\n\n" + CliApp.GlobalHelp + "\n" + CliApp.ExitCodeHelp;
        }

        var group = command.Name;
        return $"procurement {group} <verb>\n\n" + string.Join("\n", _all.Where(s => s.Group == group).Select(s => $"  {s.Verb,-14} {s.Summary}")) +
            $"\n\nRun 'procurement {group} <verb> --help' for options and an example.";
    }
}
