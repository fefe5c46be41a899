using System.Text;

namespace Procurement.Storage;

/// <summary>Enums are stored by name in UPPER_SNAKE_CASE ("END_TIME_REACHED"), never by number.</summary>
internal static class EnumNames
{
    /// <summary>The stored name of <paramref name="value"/>; a value outside the enum's members is spelled from its number.</summary>
    public static string ToUpperSnake<T>(T value) where T : struct, Enum =>
        Of<T>.Names.TryGetValue(value, out var name) ? name : Snake(value.ToString());

    /// <summary>The member stored as <paramref name="name"/>; other spellings of a member's name are accepted as well.</summary>
    public static T Parse<T>(string name) where T : struct, Enum =>
        Of<T>.Values.TryGetValue(name, out var value)
            ? value
            : Enum.Parse<T>(name.Replace("_", "", StringComparison.Ordinal), ignoreCase: true);

    private static string Snake(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]))
            {
                sb.Append('_');
            }

            sb.Append(char.ToUpperInvariant(name[i]));
        }

        return sb.ToString();
    }

    // Built once per enum type: every write and read of a row converts a few of them, so a lookup must
    // not box the value or hash a tuple.
    private static class Of<T> where T : struct, Enum
    {
        public static readonly Dictionary<T, string> Names = Enum.GetValues<T>().Distinct().ToDictionary(v => v, v => Snake(v.ToString()));

        public static readonly Dictionary<string, T> Values = Names.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);
    }
}
