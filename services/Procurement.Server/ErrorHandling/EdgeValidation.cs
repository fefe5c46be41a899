using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Errors;

namespace Procurement.Server.ErrorHandling;

/// <summary>
/// The API's rules for well-known types, checked on every request before any handler reads it: a
/// <c>Timestamp</c> lies in [1970-01-01, 9999-01-01) with nanos in 0..999,999,999 (room left for month
/// arithmetic past any valid time), a <c>Duration</c> is normalized and within ±1,000 years, and both
/// are whole milliseconds (what storage keeps), so a value is never truncated after it was validated
/// and an identical resend is always a duplicate. Every string is at most <see cref="MaxStringLength"/>
/// characters with no NUL (which PostgreSQL cannot store and no id, name or decimal contains).
/// </summary>
public static class EdgeValidation
{
    private const long MinTimestampSeconds = 0;               // 1970-01-01T00:00:00Z
    private const long EndTimestampSeconds = 253_370_764_800; // 9999-01-01T00:00:00Z, excluded
    private const long MaxDurationSeconds = 31_557_600_000;   // 1,000 years of 365.25 days
    private const int NanosPerMillisecond = 1_000_000;

    public const int MaxStringLength = 4096;

    public const string StringRule = "must be at most 4,096 characters, none of them NUL";

    public const string TimestampRule = "must be a time from 1970-01-01 up to 9999-01-01 in whole milliseconds";
    public const string DurationRule = "must be a normalized duration of at most 1,000 years in whole milliseconds";

    public static bool IsValid(Timestamp t) =>
        t.Seconds is >= MinTimestampSeconds and < EndTimestampSeconds && t.Nanos is >= 0 and < 1_000_000_000 && t.Nanos % NanosPerMillisecond == 0;

    public static bool IsValid(Duration d) =>
        d.Seconds is >= -MaxDurationSeconds and <= MaxDurationSeconds && d.Nanos is > -1_000_000_000 and < 1_000_000_000
        && (d.Seconds == 0 || d.Nanos == 0 || (d.Seconds > 0) == (d.Nanos > 0)) && d.Nanos % NanosPerMillisecond == 0;

    public static bool IsValid(string text) => text.Length <= MaxStringLength && !text.Contains('\0', StringComparison.Ordinal);

    /// <summary>Adds a violation, named by its path in the request, for every bad string, timestamp or duration in <paramref name="message"/>.</summary>
    public static void Check(IMessage message, List<FieldViolation> violations) => Walk(message, "", violations);

    private static void Walk(IMessage message, string prefix, List<FieldViolation> violations)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (field.IsMap || field.FieldType is not (FieldType.Message or FieldType.String))
            {
                continue;
            }

            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated)
            {
                var i = 0;
                foreach (var item in (System.Collections.IList)value)
                {
                    CheckValue(item!, $"{prefix}{field.Name}[{i++}]", violations);
                }
            }
            else if (value is not null)
            {
                CheckValue(value, prefix + field.Name, violations);
            }
        }
    }

    private static void CheckValue(object value, string path, List<FieldViolation> violations)
    {
        switch (value)
        {
            case string text when !IsValid(text):
                violations.Add(new(path, StringRule));
                break;
            case string:
                break;
            case Timestamp t when !IsValid(t):
                violations.Add(new(path, TimestampRule));
                break;
            case Duration d when !IsValid(d):
                violations.Add(new(path, DurationRule));
                break;
            case Timestamp or Duration:
                break;
            case IMessage child:
                Walk(child, path + ".", violations);
                break;
        }
    }
}
