using System.Collections.Concurrent;
using System.Text;

namespace Procurement.Storage;

/// <summary>Enums are stored by name in UPPER_SNAKE_CASE ("END_TIME_REACHED"), never by number.</summary>
internal static class EnumNames
{
    private static readonly ConcurrentDictionary<(Type, string), object> Parsed = new();
    private static readonly ConcurrentDictionary<object, string> Names = new();

    public static string ToUpperSnake<T>(T value) where T : struct, Enum =>
        Names.GetOrAdd(value, static v =>
        {
            var name = v.ToString()!;
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
        });

    public static T Parse<T>(string name) where T : struct, Enum =>
        (T)Parsed.GetOrAdd((typeof(T), name), static key =>
            Enum.Parse(key.Item1, key.Item2.Replace("_", "", StringComparison.Ordinal), ignoreCase: true));
}
