using System.Globalization;
using System.Text.Json;
using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Grpc.Core;
using Procurement.Client;

namespace Procurement.Cli;

/// <summary>One command: where it lives, how it is used, an example, and what it does.</summary>
public sealed record CommandSpec(string Group, string Verb, string Summary, string Usage, string Example, Func<CommandContext, Task<int>> Run, params string[] Flags);

/// <summary>What a command runs with.</summary>
public sealed class CommandContext(Args args, Output output, TextWriter error, bool showProgress, Func<ProcurementClient> client, CancellationToken cancellationToken) : IDisposable
{
    private ProcurementClient? _client;

    public Args Args => args;

    public Output Out => output;

    public TextWriter Err => error;

    /// <summary>Whether to draw progress: only on a terminal, so logs and pipes get the result alone.</summary>
    public bool ShowProgress => showProgress;

    public ProcurementClient Client => _client ??= client();

    public CancellationToken CancellationToken => cancellationToken;

    public void Dispose() => _client?.Dispose();
}

/// <summary>Whether standard output and error are terminals (progress and colour are drawn only there).</summary>
public sealed record Terminal(bool Output, bool Error)
{
    public static readonly Terminal None = new(false, false);

    public static Terminal OfConsole => new(!Console.IsOutputRedirected, !Console.IsErrorRedirected);
}

/// <summary>
/// The `procurement` command line, parsed by System.CommandLine. Exit codes: 0 success; the gRPC status
/// code of a failed call (3 INVALID_ARGUMENT, 5 NOT_FOUND, 7 PERMISSION_DENIED, 9 FAILED_PRECONDITION,
/// 14 UNAVAILABLE, 16 UNAUTHENTICATED, …); 3 for a bad local file or value; 64 for a usage mistake.
/// </summary>
public static partial class CliApp
{
    public const int UsageExitCode = 64;
    public const int InputExitCode = (int)StatusCode.InvalidArgument;

    public const string ExitCodeHelp = """
        Exit codes follow the gRPC status of the failed call:
          0 ok   3 INVALID_ARGUMENT (also a bad local file or value)   5 NOT_FOUND   6 ALREADY_EXISTS
          7 PERMISSION_DENIED   8 RESOURCE_EXHAUSTED   9 FAILED_PRECONDITION   10 ABORTED
          4 DEADLINE_EXCEEDED   14 UNAVAILABLE (server unreachable)   16 UNAUTHENTICATED   64 usage mistake
        """;

    public const string GlobalHelp = """
        Global options (anywhere on the line):
          --endpoint URL     the server (env PROCUREMENT_ENDPOINT; default http://127.0.0.1:5080)
          --api-key KEY      bearer key (env PROCUREMENT_API_KEY); never printed
          --config FILE      JSON {"endpoint": "...", "api_key": "..."} (env PROCUREMENT_CONFIG;
                             default ~/.config/procurement/config.json); flags win over env over file
          -o, --output table|json  tables for people (default) or protobuf JSON with stable snake_case names
          @FILE              read more arguments from FILE, one or more per line
        """;

    public static async Task<int> RunAsync(string[] argv, TextWriter stdout, TextWriter stderr, Func<string, string?> env,
        CancellationToken cancellationToken = default, Terminal? terminal = null)
    {
        terminal ??= Terminal.None;
        var colour = terminal.Error && string.IsNullOrEmpty(env("NO_COLOR"));
        var specs = Specs();
        var cli = CommandTree.Build(specs);
        if (argv is ["help"])
        {
            argv = ["--help"];
        }

        var parsed = cli.Root.Parse(argv);
        var command = parsed.CommandResult.Command;
        var spec = cli.SpecOf(command);
        if (cli.Root.Directives.OfType<SuggestDirective>().Any(d => parsed.GetResult(d) is not null))
        {
            // `procurement "[suggest:N]" "LINE"`: the completions at N in LINE, one per line (the shell scripts' source).
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, cancellationToken);
        }

        if (parsed.Action is HelpAction)
        {
            await stdout.WriteLineAsync(cli.Help(command));
            return 0;
        }

        if (spec is null && parsed.Errors.Count > 0 && parsed.Tokens.Count == (command == cli.Root ? 0 : 1))
        {
            // A bare `procurement` or `procurement pools`: what there is to run, as a usage mistake.
            await (command == cli.Root ? stdout : stderr).WriteLineAsync(cli.Help(command));
            return UsageExitCode;
        }

        if (parsed.Errors.Count > 0)
        {
            // "Required command was not provided" says nothing more when a token was not recognised.
            var errors = parsed.Errors.Count > 1 ? parsed.Errors.Where(e => e.Message != "Required command was not provided.") : parsed.Errors;
            foreach (var error in errors)
            {
                await stderr.WriteLineAsync($"{ErrorPrefix(colour)} {error.Message}");
            }

            // System.CommandLine's own words for a near miss: "Did you mean one of the following?".
            var typos = new StringWriter();
            if (parsed.Action is ParseErrorAction errorAction)
            {
                (errorAction.ShowHelp, errorAction.ShowTypoCorrections) = (false, true);
            }

            await parsed.InvokeAsync(new InvocationConfiguration { Output = typos, Error = typos }, cancellationToken);
            if (TypoSuggestions(typos.ToString()) is { Length: > 0 } suggestions)
            {
                await stderr.WriteLineAsync(suggestions);
            }

            await stderr.WriteLineAsync($"\n{cli.Help(command)}");
            return UsageExitCode;
        }

        if (spec is null)
        {
            await stderr.WriteLineAsync(cli.Help(command));
            return UsageExitCode;
        }

        var args = new Args(parsed);
        try
        {
            // The parser accepts only table or json; the connection is resolved when a command first calls
            // the server, so commands that do not (completion) need no configuration.
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var context = new CommandContext(args, new Output(stdout, args.Get("output") == "json"), stderr, terminal.Error, () =>
            {
                var (endpoint, apiKey) = Connection(args, env);
                return ProcurementClient.Create(new ProcurementClientOptions { Endpoint = endpoint, ApiKey = apiKey, MaxRetryAttempts = 2 });
            }, cancel.Token);
            return await spec.Run(context);
        }
        catch (UsageException e)
        {
            await stderr.WriteLineAsync($"{ErrorPrefix(colour)} {e.Message}\n\n{CommandHelp(spec)}");
            return UsageExitCode;
        }
        catch (InputException e)
        {
            await stderr.WriteLineAsync($"{ErrorPrefix(colour)} {e.Message}");
            return InputExitCode;
        }
        catch (ProcurementRpcException e)
        {
            await stderr.WriteLineAsync($"{ErrorPrefix(colour)} {Output.Enum(e.StatusCode)}{(e.Reason is null ? "" : $" ({e.Reason})")}: {e.Message}");
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

    /// <summary>"error:", in red on a terminal unless NO_COLOR is set (https://no-color.org).</summary>
    private static string ErrorPrefix(bool colour) => colour ? "\u001b[31merror:\u001b[0m" : "error:";

    /// <summary>The "Did you mean" part of System.CommandLine's parse-error output, without its help.</summary>
    private static string TypoSuggestions(string output)
    {
        var lines = output.ReplaceLineEndings("\n").Split('\n');
        var start = Array.FindIndex(lines, l => l.Contains("Did you mean", StringComparison.Ordinal));
        return start < 0 ? "" : string.Join("\n", lines[start..].TakeWhile(l => l.Length > 0)).TrimEnd();
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

    internal static string CommandHelp(CommandSpec spec) =>
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
