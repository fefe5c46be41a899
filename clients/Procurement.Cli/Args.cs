using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Procurement.Cli;

/// <summary>A usage mistake on the command line: printed with the command's help, exit code 64.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A command's options and arguments as System.CommandLine parsed them. The symbols come from the
/// command's usage line (<see cref="Declare"/>), so its help and its parser cannot disagree; the
/// parser refuses unknown options and extra arguments, the command checks values with its own words.
/// </summary>
public sealed partial class Args(ParseResult result)
{
    /// <summary>
    /// Adds to <paramref name="command"/> what <paramref name="usage"/> names: <c>--name VALUE</c> an option,
    /// <c>--name VALUE...</c> a repeatable one, <c>--flag</c> (listed in <paramref name="flags"/>) a switch,
    /// an UPPER_CASE word on its own a positional argument. Notes after three spaces are not syntax.
    /// </summary>
    public static void Declare(Command command, string usage, IReadOnlyCollection<string> flags)
    {
        var syntax = usage.Split("   ")[0];
        // "(--a A | --b B)" is a choice of options; "A|B" inside a placeholder is one word.
        var words = Punctuation().Replace(syntax, " ").Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => w != "|").ToArray();
        for (var i = 0; i < words.Length; i++)
        {
            var word = words[i];
            if (word.StartsWith("--", StringComparison.Ordinal))
            {
                var name = word[2..];
                if (command.Options.Any(o => o.Name == word))
                {
                    continue;
                }

                if (flags.Contains(name))
                {
                    command.Options.Add(new Option<bool>(word));
                    continue;
                }

                var placeholder = i + 1 < words.Length ? words[++i] : "VALUE";
                command.Options.Add(placeholder.EndsWith("...", StringComparison.Ordinal)
                    ? new Option<string[]>(word) { HelpName = placeholder[..^3], AllowMultipleArgumentsPerToken = false }
                    : WholeNumbers.Contains(placeholder) ? WholeNumber(word, placeholder)
                    : new Option<string>(word) { HelpName = placeholder });
            }
            else if (Placeholder().IsMatch(word))
            {
                // Optional to the parser, so a missing one is reported by the command in its own words.
                command.Arguments.Add(new Argument<string>(word) { Arity = ArgumentArity.ZeroOrOne });
            }
        }
    }

    public bool Has(string name) => result.GetValue<bool>(OptionName(name));

    public string? Get(string name) => result.GetValue<string>(OptionName(name));

    public IReadOnlyList<string> All(string name) => result.GetValue<string[]>(OptionName(name)) ?? [];

    public string Required(string name) => Get(name) ?? throw new UsageException($"--{name} is required");

    /// <summary>A whole-number option (placeholder N or SEQ), checked by the parser.</summary>
    public long Long(string name, long? fallback = null) =>
        result.GetValue<long?>(OptionName(name)) ?? fallback ?? throw new UsageException($"--{name} is required");

    private static readonly string[] WholeNumbers = ["N", "SEQ"];

    private static Option<long?> WholeNumber(string name, string placeholder) => new(name)
    {
        HelpName = placeholder,
        CustomParser = r =>
        {
            var text = r.Tokens.Count == 0 ? "" : r.Tokens[^1].Value;
            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }

            r.AddError($"{name} must be a whole number, not '{text}'");
            return null;
        },
    };

    public string Positional1(string what) =>
        result.GetValue<string>(what) is { Length: > 0 } value ? value : throw new UsageException($"{what} is required");

    private static string OptionName(string name) => "--" + name;

    [GeneratedRegex(@"[\[\]()]")]
    private static partial Regex Punctuation();

    [GeneratedRegex(@"^[A-Z][A-Z0-9_]*$")]
    private static partial Regex Placeholder();
}
