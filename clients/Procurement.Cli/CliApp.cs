using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Procurement.Client;

namespace Procurement.Cli;

/// <summary>One command: where it lives, how it is used, an example, and what it does.</summary>
public sealed record CommandSpec(string Group, string Verb, string Summary, string Usage, string Example, Func<CommandContext, Task<int>> Run, params string[] Flags);

/// <summary>What a command runs with.</summary>
public sealed class CommandContext(Args args, Output output, TextWriter error, Func<ProcurementClient> client, CancellationToken cancellationToken) : IDisposable
{
    private ProcurementClient? _client;

    public Args Args => args;

    public Output Out => output;

    public TextWriter Err => error;

    public ProcurementClient Client => _client ??= client();

    public CancellationToken CancellationToken => cancellationToken;

    public void Dispose() => _client?.Dispose();
}

/// <summary>
/// The `procurement` command line. Exit codes: 0 success; the gRPC status code of a failed call
/// (3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, 9 FAILED_PRECONDITION, 14 UNAVAILABLE,
/// 16 UNAUTHENTICATED, …); 3 for a bad local file or value; 64 for a usage mistake.
/// </summary>
public static partial class CliApp
{
    public const int UsageExitCode = 64;
    public const int InputExitCode = (int)StatusCode.InvalidArgument;

    private static readonly string[] GlobalOptions = ["endpoint", "api-key", "config", "output", "help"];

    public const string ExitCodeHelp = """
        Exit codes follow the gRPC status of the failed call:
          0 ok   3 INVALID_ARGUMENT (also a bad local file or value)   5 NOT_FOUND   6 ALREADY_EXISTS
          7 PERMISSION_DENIED   8 RESOURCE_EXHAUSTED   9 FAILED_PRECONDITION   10 ABORTED
          4 DEADLINE_EXCEEDED   14 UNAVAILABLE (server unreachable)   16 UNAUTHENTICATED   64 usage mistake
        """;

    public const string GlobalHelp = """
        Global options:
          --endpoint URL     the server (env PROCUREMENT_ENDPOINT; default http://127.0.0.1:5080)
          --api-key KEY      bearer key (env PROCUREMENT_API_KEY); never printed
          --config FILE      JSON {"endpoint": "...", "api_key": "..."} (env PROCUREMENT_CONFIG;
                             default ~/.config/procurement/config.json); flags win over env over file
          --output table|json  tables for people (default) or protobuf JSON with stable snake_case names
        """;

    public static async Task<int> RunAsync(string[] argv, TextWriter stdout, TextWriter stderr, Func<string, string?> env, CancellationToken cancellationToken = default)
    {
        var specs = Specs();
        // Global options may come before the command: move them behind it.
        var leading = new List<string>();
        while (argv.Length >= 2 && argv[0].StartsWith("--", StringComparison.Ordinal) && GlobalOptions.Contains(argv[0][2..].Split('=')[0]) && argv[0] != "--help")
        {
            var takesValue = !argv[0].Contains('=', StringComparison.Ordinal);
            leading.AddRange(argv[..(takesValue ? 2 : 1)]);
            argv = argv[(takesValue ? 2 : 1)..];
        }

        argv = argv.Length == 0 ? argv : [.. argv, .. leading]; // options are read wherever they stand after the command
        if (argv.Length == 0 || argv[0] is "--help" or "-h" or "help")
        {
            await stdout.WriteLineAsync(RootHelp(specs));
            return argv.Length == 0 ? UsageExitCode : 0;
        }

        var group = argv[0];
        var groupSpecs = specs.Where(s => s.Group == group).ToList();
        if (groupSpecs.Count == 0)
        {
            await stderr.WriteLineAsync($"error: unknown command '{group}'\n\n{RootHelp(specs)}");
            return UsageExitCode;
        }

        CommandSpec? spec;
        string[] rest;
        if (groupSpecs.Count == 1 && groupSpecs[0].Verb.Length == 0)
        {
            (spec, rest) = (groupSpecs[0], argv[1..]);
        }
        else if (argv.Length < 2 || argv[1] is "--help" or "-h")
        {
            await (argv.Length < 2 ? stderr : stdout).WriteLineAsync(GroupHelp(group, groupSpecs));
            return argv.Length < 2 ? UsageExitCode : 0;
        }
        else
        {
            spec = groupSpecs.FirstOrDefault(s => s.Verb == argv[1]);
            rest = argv[2..];
            if (spec is null)
            {
                await stderr.WriteLineAsync($"error: unknown command '{group} {argv[1]}'\n\n{GroupHelp(group, groupSpecs)}");
                return UsageExitCode;
            }
        }

        try
        {
            var args = new Args(rest, spec.Flags.Append("help").ToHashSet());
            if (args.Has("help"))
            {
                await stdout.WriteLineAsync(CommandHelp(spec));
                return 0;
            }

            var outputMode = args.Get("output") ?? "table";
            if (outputMode is not ("table" or "json"))
            {
                throw new UsageException("--output must be table or json");
            }

            var (endpoint, apiKey) = Connection(args, env);
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var context = new CommandContext(args, new Output(stdout, outputMode == "json"), stderr,
                () => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = endpoint, ApiKey = apiKey, MaxRetryAttempts = 2 }), cancel.Token);
            return await spec.Run(context);
        }
        catch (UsageException e)
        {
            await stderr.WriteLineAsync($"error: {e.Message}\n\n{CommandHelp(spec)}");
            return UsageExitCode;
        }
        catch (InputException e)
        {
            await stderr.WriteLineAsync($"error: {e.Message}");
            return InputExitCode;
        }
        catch (ProcurementRpcException e)
        {
            await stderr.WriteLineAsync($"error: {Output.Enum(e.StatusCode)}{(e.Reason is null ? "" : $" ({e.Reason})")}: {e.Message}");
            foreach (var f in e.FieldErrors)
            {
                await stderr.WriteLineAsync($"  {f.Field}: {f.Description}");
            }

            return (int)e.StatusCode;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("cancelled");
            return (int)StatusCode.Cancelled;
        }
    }

    private static (Uri Endpoint, string? ApiKey) Connection(Args args, Func<string, string?> env)
    {
        string? fileEndpoint = null, fileKey = null;
        var configPath = args.Get("config") ?? env("PROCUREMENT_CONFIG");
        var defaultPath = Path.Combine(env("HOME") ?? "", ".config", "procurement", "config.json");
        var path = configPath ?? (File.Exists(defaultPath) ? defaultPath : null);
        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new InputException($"config file '{path}' does not exist");
            }

            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(path));
                fileEndpoint = doc.RootElement.TryGetProperty("endpoint", out var e) ? e.GetString() : null;
                fileKey = doc.RootElement.TryGetProperty("api_key", out var k) ? k.GetString() : null;
            }
            catch (JsonException e)
            {
                throw new InputException($"config file '{path}' is not valid JSON: {e.Message}");
            }
        }

        var endpoint = args.Get("endpoint") ?? env("PROCUREMENT_ENDPOINT") ?? fileEndpoint ?? ProcurementClientOptions.DefaultEndpoint;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--endpoint must be an http:// or https:// address, not '{endpoint}'");
        }

        return (uri, args.Get("api-key") ?? env("PROCUREMENT_API_KEY") ?? fileKey);
    }

    internal static void RejectUnknown(this Args args) => args.RejectUnknown(GlobalOptions);

    private static string RootHelp(IReadOnlyList<CommandSpec> specs) =>
        "procurement — operate the Procurement service\n\nUsage: procurement <command> [<verb>] [options]\n\nCommands:\n" +
        string.Join("\n", specs.GroupBy(s => s.Group).Select(g => $"  {g.Key,-12} {string.Join(", ", g.Select(s => s.Verb).Where(v => v.Length > 0))}")) +
        "\n\nRun 'procurement <command> <verb> --help' for a command's options and an example.\n\n" + GlobalHelp + "\n" + ExitCodeHelp;

    private static string GroupHelp(string group, IReadOnlyList<CommandSpec> specs) =>
        $"procurement {group} <verb>\n\n" + string.Join("\n", specs.Select(s => $"  {s.Verb,-14} {s.Summary}")) +
        $"\n\nRun 'procurement {group} <verb> --help' for options and an example.";

    private static string CommandHelp(CommandSpec spec) =>
        $"{spec.Summary}\n\nUsage: procurement {spec.Group}{(spec.Verb.Length > 0 ? " " + spec.Verb : "")} {spec.Usage}\n\nExample:\n  {spec.Example}\n\n{GlobalHelp}\n{ExitCodeHelp}";

    /// <summary>An ISO time, or <c>now</c>, <c>now-30m</c>, <c>now+2h</c> (whole milliseconds).</summary>
    internal static DateTimeOffset ParseTime(string text, string option)
    {
        if (text.StartsWith("now", StringComparison.Ordinal))
        {
            var now = TimeProvider.System.GetUtcNow();
            var offset = text.Length == 3 ? TimeSpan.Zero
                : text[3] is '-' or '+' ? ParseDuration(text[4..], option) * (text[3] == '-' ? -1 : 1)
                : throw new InputException($"--{option} must be a time such as 2026-04-01T00:00:00Z or now-30m, not '{text}'");
            return DateTimeOffset.FromUnixTimeMilliseconds((now + offset).ToUnixTimeMilliseconds());
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t : throw new InputException($"--{option} must be a time such as 2026-04-01T00:00:00Z or now-30m, not '{text}'");
    }

    internal static TimeSpan ParseDuration(string text, string option)
    {
        var units = new Dictionary<char, TimeSpan> { ['s'] = TimeSpan.FromSeconds(1), ['m'] = TimeSpan.FromMinutes(1), ['h'] = TimeSpan.FromHours(1), ['d'] = TimeSpan.FromDays(1) };
        if (text.Length >= 2 && units.TryGetValue(text[^1], out var unit) && long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            return unit * n;
        }

        throw new InputException($"--{option} must be a duration such as 90s, 30m, 8h or 7d, not '{text}'");
    }

    internal static Procurement.Api.V1.BillingMonth ParseMonth(string text)
    {
        var parts = text.Split('-');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var y) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var m) && m is >= 1 and <= 12)
        {
            return new Procurement.Api.V1.BillingMonth { Year = y, Month = m };
        }

        throw new InputException($"--month must be YYYY-MM, not '{text}'");
    }
}
