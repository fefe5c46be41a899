using System.Reflection;

namespace Procurement.Storage;

/// <summary>Numbered schema migrations, one folder per provider, with the same numbering in each.</summary>
public static class MigrationScripts
{
    /// <summary>The embedded <c>Migrations/{provider}/NNNN_name.sql</c> files, in order.</summary>
    public static IReadOnlyList<(long Version, string Name, string Sql)> Load(string provider)
    {
        var prefix = $"Procurement.Storage.Migrations.{provider}.";
        var assembly = Assembly.GetExecutingAssembly();
        var result = new List<(long, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var name = resource[prefix.Length..^".sql".Length];
            var version = long.Parse(name[..name.IndexOf('_')], System.Globalization.CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            result.Add((version, name, reader.ReadToEnd()));
        }

        return result.OrderBy(m => m.Item1).ToList();
    }
}
