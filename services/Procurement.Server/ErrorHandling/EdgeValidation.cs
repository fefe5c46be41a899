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
/// and an identical resend is always a duplicate.
/// </summary>
public static class EdgeValidation
{
    private const long MinTimestampSeconds = 0;               // 1970-01-01T00:00:00Z
    private const long EndTimestampSeconds = 253_370_764_800; // 9999-01-01T00:00:00Z, excluded
    private const long MaxDurationSeconds = 31_557_600_000;   // 1,000 years of 365.25 days
    private const int NanosPerMillisecond = 1_000_000;

    public const string TimestampRule = "must be a time from 1970-01-01 up to 9999-01-01 in whole milliseconds";
    public const string DurationRule = "must be a normalized duration of at most 1,000 years in whole milliseconds";

    public static bool IsValid(Timestamp t) =>
        t.Seconds is >= MinTimestampSeconds and < EndTimestampSeconds && t.Nanos is >= 0 and < 1_000_000_000 && t.Nanos % NanosPerMillisecond == 0;

    public static bool IsValid(Duration d) =>
        d.Seconds is >= -MaxDurationSeconds and <= MaxDurationSeconds && d.Nanos is > -1_000_000_000 and < 1_000_000_000
        && (d.Seconds == 0 || d.Nanos == 0 || (d.Seconds > 0) == (d.Nanos > 0)) && d.Nanos % NanosPerMillisecond == 0;

    /// <summary>Adds a violation, named by its path in the request, for every bad timestamp or duration in <paramref name="message"/>.</summary>
    public static void Check(IMessage message, List<FieldViolation> violations) => Walk(message, "", violations);

    private static readonly Dictionary<MessageDescriptor, bool> Relevant = [];

    private static void Walk(IMessage message, string prefix, List<FieldViolation> violations)
    {
        if (!HasTimes(message.Descriptor))
        {
            return;
        }

        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (field.FieldType != FieldType.Message || field.IsMap)
            {
                continue;
            }

            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated)
            {
                var i = 0;
                foreach (var item in (System.Collections.IList)value)
                {
                    CheckValue((IMessage)item!, $"{prefix}{field.Name}[{i++}]", violations);
                }
            }
            else if (value is IMessage child)
            {
                CheckValue(child, prefix + field.Name, violations);
            }
        }
    }

    private static void CheckValue(IMessage value, string path, List<FieldViolation> violations)
    {
        switch (value)
        {
            case Timestamp t when !IsValid(t):
                violations.Add(new(path, TimestampRule));
                break;
            case Duration d when !IsValid(d):
                violations.Add(new(path, DurationRule));
                break;
            case Timestamp or Duration:
                break;
            default:
                Walk(value, path + ".", violations);
                break;
        }
    }

    /// <summary>Whether a message type holds a timestamp or a duration anywhere below it; computed once per type.</summary>
    private static bool HasTimes(MessageDescriptor descriptor)
    {
        lock (Relevant)
        {
            if (Relevant.TryGetValue(descriptor, out var known))
            {
                return known;
            }

            Relevant[descriptor] = false; // a recursive type is settled by its other fields
            var has = descriptor.Fields.InFieldNumberOrder().Any(f => f.FieldType == FieldType.Message && !f.IsMap
                && (f.MessageType.FullName is "google.protobuf.Timestamp" or "google.protobuf.Duration" || HasTimes(f.MessageType)));
            Relevant[descriptor] = has;
            return has;
        }
    }
}
