using System.Text;

namespace Procurement.Benchmarks;

/// <summary>
/// The results table in Markdown, and its place in docs/performance.md between two markers, so the
/// published figures are always those the harness measured, never typed by hand.
/// </summary>
internal static class PerformanceDoc
{
    public const string Start = "<!-- benchmark-table:start -->";
    public const string End = "<!-- benchmark-table:end -->";

    public static string Table(IEnumerable<(string Measure, string Result, string Baseline, string Ratio, string Target)> rows, string machine, string arguments, string commit)
    {
        var text = new StringBuilder();
        text.AppendLine("| measure | result | baseline | ratio | target |");
        text.AppendLine("| --- | --- | --- | --- | --- |");
        foreach (var r in rows)
        {
            text.AppendLine($"| {r.Measure} | {r.Result} | {r.Baseline} | {r.Ratio} | {r.Target} |");
        }

        text.AppendLine();
        text.AppendLine($"Machine: {machine}. Code: {commit}. Arguments: `{(arguments.Length == 0 ? "(defaults)" : arguments)}`.");
        return text.ToString();
    }

    /// <summary>The run's arguments as a reader would repeat them: no output file, no connection string (it may hold a password).</summary>
    public static string Arguments(string[] args)
    {
        var kept = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--markdown":
                    i++;
                    break;
                case "--postgres":
                    kept.Add("--postgres \"$PROCUREMENT_TEST_POSTGRES\"");
                    i++;
                    break;
                default:
                    kept.Add(args[i]);
                    break;
            }
        }

        return string.Join(' ', kept);
    }

    public static bool HasMarkers(string path) =>
        File.Exists(path) && File.ReadAllText(path) is var text && text.Contains(Start, StringComparison.Ordinal) && text.Contains(End, StringComparison.Ordinal);

    /// <summary>Replaces what stands between the markers with <paramref name="table"/>; the rest of the file is kept.</summary>
    public static void Write(string path, string table)
    {
        var text = File.ReadAllText(path);
        var from = text.IndexOf(Start, StringComparison.Ordinal) + Start.Length;
        var to = text.IndexOf(End, from, StringComparison.Ordinal);
        File.WriteAllText(path, text[..from] + "\n" + table + text[to..]);
    }

    /// <summary>The commit measured, with "+changes" when the work tree differs from it.</summary>
    public static async Task<string> CommitAsync(string root)
    {
        try
        {
            var head = (await Shell.RunAsync("git", ["-C", root, "rev-parse", "--short", "HEAD"])).Trim();
            var dirty = (await Shell.RunAsync("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"])).Trim().Length > 0;
            return dirty ? $"{head}+changes" : head;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "unknown (no git)";
        }
    }
}
