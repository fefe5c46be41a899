using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.Cli;

/// <summary>
/// Usage samples from CSV (header <c>source,sample_id,allocation_id,window_start,window_end,busy_gpu_seconds</c>,
/// ISO times) or JSON (an array of samples in protobuf JSON, or a ReportUsageRequest).
/// </summary>
public static class UsageFile
{
    private static readonly string[] Columns = ["source", "sample_id", "allocation_id", "window_start", "window_end", "busy_gpu_seconds"];

    public static List<UsageSample> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"usage file '{path}' does not exist");
        }

        return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Json(path) : Csv(path);
    }

    private static List<UsageSample> Json(string path)
    {
        var text = File.ReadAllText(path).TrimStart();
        try
        {
            var request = JsonParser.Default.Parse<ReportUsageRequest>(text.StartsWith('[') ? $"{{\"samples\": {text}}}" : text);
            return [.. request.Samples];
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException)
        {
            throw new InputException($"usage file '{path}': {e.Message}");
        }
    }

    private static List<UsageSample> Csv(string path)
    {
        var samples = new List<UsageSample>();
        using var reader = new StreamReader(path);
        var header = reader.ReadLine()?.Split(',').Select(h => h.Trim()).ToArray();
        if (header is null || !header.SequenceEqual(Columns))
        {
            throw new InputException($"usage file '{path}' must start with the header {string.Join(',', Columns)}");
        }

        var line = 1;
        while (reader.ReadLine() is { } row)
        {
            line++;
            if (row.Trim().Length == 0)
            {
                continue;
            }

            var cells = row.Split(',').Select(c => c.Trim()).ToArray();
            if (cells.Length != Columns.Length || !long.TryParse(cells[5], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var busy))
            {
                throw new InputException($"usage file '{path}', line {line}: expected {Columns.Length} columns with a whole busy_gpu_seconds");
            }

            samples.Add(new UsageSample
            {
                Source = cells[0], SampleId = cells[1], AllocationId = cells[2],
                WindowStart = Timestamp.FromDateTimeOffset(Time(cells[3], path, line)),
                WindowEnd = Timestamp.FromDateTimeOffset(Time(cells[4], path, line)),
                BusyGpuSeconds = busy,
            });
        }

        return samples;
    }

    private static DateTimeOffset Time(string text, string path, int line) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t : throw new InputException($"usage file '{path}', line {line}: '{text}' is not a time");
}
