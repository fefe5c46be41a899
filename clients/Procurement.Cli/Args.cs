namespace Procurement.Cli;

/// <summary>A usage mistake on the command line: printed with the command's help, exit code 64.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// `group verb positional... --name value --flag`. Options may repeat (e.g. <c>--usage</c>); a value may
/// also be written <c>--name=value</c>. Every option must be known to the command.
/// </summary>
public sealed class Args
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public Args(IEnumerable<string> tokens, IReadOnlySet<string> flags)
    {
        var list = tokens.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var token = list[i];
            if (token == "-h")
            {
                token = "--help";
            }

            if (!token.StartsWith("--", StringComparison.Ordinal) || token.Length == 2)
            {
                Positional.Add(token);
                continue;
            }

            var name = token[2..];
            string value;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            else if (flags.Contains(name))
            {
                value = "true";
            }
            else if (i + 1 < list.Count)
            {
                value = list[++i];
            }
            else
            {
                throw new UsageException($"--{name} needs a value");
            }

            if (!_options.TryGetValue(name, out var values))
            {
                _options[name] = values = [];
            }

            values.Add(value);
        }
    }

    public List<string> Positional { get; } = [];

    public bool Has(string name)
    {
        _read.Add(name);
        return _options.ContainsKey(name);
    }

    public string? Get(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var v) ? v[^1] : null;
    }

    public IReadOnlyList<string> All(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var v) ? v : [];
    }

    public string Required(string name) => Get(name) ?? throw new UsageException($"--{name} is required");

    public long Long(string name, long? fallback = null)
    {
        var text = Get(name);
        if (text is null)
        {
            return fallback ?? throw new UsageException($"--{name} is required");
        }

        return long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new UsageException($"--{name} must be a whole number, not '{text}'");
    }

    public string Positional1(string what) => Positional.Count > 0 ? Positional[0] : throw new UsageException($"{what} is required");

    /// <summary>Throws for an option the command did not ask about (a typo should not be ignored).</summary>
    public void RejectUnknown(IEnumerable<string> global)
    {
        var unknown = _options.Keys.Except(_read).Except(global).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"unknown option --{unknown[0]}");
        }
    }
}
