using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Server.ErrorHandling;

namespace Procurement.Server.Mapping;

/// <summary>Reading common request fields, each failure named by its field.</summary>
public static class RequestFields
{
    public static BillingMonth Month(Procurement.Api.V1.BillingMonth? month, string field, List<FieldViolation> v)
    {
        if (month is null || !BillingMonth.IsValid(month.Year, month.Month))
        {
            v.Add(new(field, "is required: a year 2000..9998 and a month 1..12"));
            return default;
        }

        return new BillingMonth(month.Year, month.Month);
    }

    public static DateTimeOffset? Time(Timestamp? t, string field, List<FieldViolation> v, bool required)
    {
        if (t is null)
        {
            if (required)
            {
                v.Add(new(field, "is required"));
            }

            return null;
        }

        if (!EdgeValidation.IsValid(t))
        {
            v.Add(new(field, EdgeValidation.TimestampRule));
            return null;
        }

        return t.ToDateTimeOffset();
    }

    public static decimal? Decimal(string text, string field, List<FieldViolation> v, decimal min, decimal max, bool required)
    {
        if (text.Length == 0)
        {
            if (required)
            {
                v.Add(new(field, "is required"));
            }

            return null;
        }

        if (!DecimalText.TryParse(text, out var value))
        {
            v.Add(new(field, $"{DomainErrors.Quote(text)} is not a decimal string such as \"0.95\""));
            return null;
        }

        if (value < min || value > max)
        {
            v.Add(new(field, $"must be between {DecimalText.Format(min)} and {DecimalText.Format(max)}"));
            return null;
        }

        return value;
    }
}
