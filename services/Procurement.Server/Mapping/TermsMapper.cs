using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Errors;
using V1 = Procurement.Api.V1;

namespace Procurement.Server.Mapping;

/// <summary>
/// Turns API terms into domain terms, collecting a violation for every field that cannot be read
/// (missing, not a decimal, wrong currency, sub-millisecond time); the domain validator then checks
/// the rules. Paths are full request paths, e.g. <c>terms.rate_card[0].tiers[1].up_to_gpu_hours</c>.
/// </summary>
public static class TermsMapper
{
    public static ContractTerms ToDomain(V1.ContractTerms? terms, string prefix, List<FieldViolation> v)
    {
        if (terms is null)
        {
            v.Add(new(prefix.TrimEnd('.'), "is required"));
            terms = new V1.ContractTerms();
        }

        var currency = terms.CurrencyCode;
        var start = Time(terms.StartTime, $"{prefix}start_time", v);
        var end = Time(terms.EndTime, $"{prefix}end_time", v);
        var commitment = terms.MonthlyCommitment is null
            ? Required(0L, $"{prefix}monthly_commitment", v)
            : Amount(terms.MonthlyCommitment, currency, $"{prefix}monthly_commitment", v);

        var entitlements = terms.Entitlements.Select(e => new PoolEntitlement(e.PoolId, e.ReservedUnits, e.BurstLimitUnits) { MaxBlockUnits = e.MaxBlockUnits }).ToList();
        var priority = new PriorityAccess(terms.PriorityAccess?.Priority ?? 0, terms.PriorityAccess?.PreemptLowerPriorityBurst ?? false);

        var rateCard = terms.RateCard.Select((entry, i) =>
        {
            var path = $"{prefix}rate_card[{i}]";
            if (entry.Mode == V1.PricingMode.Unspecified)
            {
                v.Add(new($"{path}.mode", "must be GRADUATED or VOLUME"));
            }

            var tiers = entry.Tiers.Select((tier, t) =>
            {
                var tierPath = $"{path}.tiers[{t}]";
                decimal? upTo = tier.UpToGpuHours.Length == 0 ? null : Decimal(tier.UpToGpuHours, $"{tierPath}.up_to_gpu_hours", v);
                var price = tier.UnitPrice is null
                    ? Required(0L, $"{tierPath}.unit_price", v)
                    : Amount(tier.UnitPrice, currency, $"{tierPath}.unit_price", v);
                return new PriceTier(upTo, price);
            }).ToList();
            return new RateCardEntry(entry.AcceleratorType, (PricingMode)(int)entry.Mode, tiers);
        }).ToList();

        IndexLinkage? index = null;
        if (terms.IndexLinkage is { } il)
        {
            var path = $"{prefix}index_linkage";
            index = new IndexLinkage(il.IndexName,
                Decimal(il.BaseValue, $"{path}.base_value", v),
                Decimal(il.PassThrough, $"{path}.pass_through", v),
                Decimal(il.Floor, $"{path}.floor", v),
                Decimal(il.Cap, $"{path}.cap", v));
        }

        var bands = terms.UtilizationBands.Select((b, i) =>
        {
            var path = $"{prefix}utilization_bands[{i}]";
            if (b.Metric == V1.UtilizationMetric.Unspecified)
            {
                v.Add(new($"{path}.metric", "must be RESERVATION_UTILIZATION or POOL_UTILIZATION"));
            }

            decimal? max = b.Max.Length == 0 ? null : Decimal(b.Max, $"{path}.max", v);
            return new UtilizationBand((UtilizationMetric)(int)b.Metric, Decimal(b.Min, $"{path}.min", v), max, Decimal(b.Multiplier, $"{path}.multiplier", v));
        }).ToList();

        SlaTerms sla;
        if (terms.Sla is null)
        {
            v.Add(new($"{prefix}sla", "is required"));
            sla = new SlaTerms(100m, [], 0m, TimeSpan.Zero);
        }
        else
        {
            var path = $"{prefix}sla";
            var schedule = terms.Sla.CreditSchedule.Select((row, i) => new SlaCreditRow(
                Decimal(row.BelowPercent, $"{path}.credit_schedule[{i}].below_percent", v),
                Decimal(row.CreditPercent, $"{path}.credit_schedule[{i}].credit_percent", v))).ToList();
            sla = new SlaTerms(
                Decimal(terms.Sla.AvailabilityTargetPercent, $"{path}.availability_target_percent", v),
                schedule,
                Decimal(terms.Sla.CreditCapPercent, $"{path}.credit_cap_percent", v),
                terms.Sla.MaintenanceNotice?.ToTimeSpan() ?? TimeSpan.Zero);
        }

        var blockRates = terms.BlockRates.Select((r, i) => new BlockRate(r.AcceleratorType, r.UnitPrice is null
            ? Required(0L, $"{prefix}block_rates[{i}].unit_price", v)
            : Amount(r.UnitPrice, currency, $"{prefix}block_rates[{i}].unit_price", v))).ToList();
        return new ContractTerms(start, end, currency, commitment, entitlements, priority, rateCard, index, bands, sla)
        {
            BlockRates = blockRates,
            BlockCancellationNotice = terms.BlockCancellationNotice?.ToTimeSpan() ?? TimeSpan.Zero,
        };
    }

    /// <summary>Adds the domain validator's findings, skipping fields the mapping already reported.</summary>
    public static void AddDomainViolations(IEnumerable<FieldViolation> domain, string prefix, List<FieldViolation> v)
    {
        var reported = v.Select(x => x.Field).ToHashSet(StringComparer.Ordinal);
        foreach (var violation in domain)
        {
            var field = prefix + violation.Field;
            if (!reported.Contains(field))
            {
                v.Add(violation with { Field = field });
            }
        }
    }

    public static V1.ContractTerms ToApi(ContractTerms t)
    {
        var result = new V1.ContractTerms
        {
            StartTime = Timestamp.FromDateTimeOffset(t.StartTime),
            EndTime = Timestamp.FromDateTimeOffset(t.EndTime),
            CurrencyCode = t.CurrencyCode,
            MonthlyCommitment = Money(t.MonthlyCommitmentMicros, t.CurrencyCode),
            PriorityAccess = new V1.PriorityAccess { Priority = t.PriorityAccess.Priority, PreemptLowerPriorityBurst = t.PriorityAccess.PreemptLowerPriorityBurst },
            Sla = new V1.SlaTerms
            {
                AvailabilityTargetPercent = DecimalText.Format(t.Sla.AvailabilityTargetPercent),
                CreditCapPercent = DecimalText.Format(t.Sla.CreditCapPercent),
                MaintenanceNotice = Duration.FromTimeSpan(t.Sla.MaintenanceNotice),
            },
        };
        result.Entitlements.AddRange(t.Entitlements.Select(e => new V1.PoolEntitlement
        {
            PoolId = e.PoolId, ReservedUnits = e.ReservedUnits, BurstLimitUnits = e.BurstLimitUnits, MaxBlockUnits = e.MaxBlockUnits,
        }));
        result.BlockRates.AddRange(t.BlockRates.Select(r => new V1.BlockRate { AcceleratorType = r.AcceleratorType, UnitPrice = Money(r.UnitPriceMicros, t.CurrencyCode) }));
        if (t.BlockCancellationNotice > TimeSpan.Zero)
        {
            result.BlockCancellationNotice = Duration.FromTimeSpan(t.BlockCancellationNotice);
        }

        foreach (var entry in t.RateCard)
        {
            var apiEntry = new V1.RateCardEntry { AcceleratorType = entry.AcceleratorType, Mode = (V1.PricingMode)(int)entry.Mode };
            apiEntry.Tiers.AddRange(entry.Tiers.Select(tier => new V1.PriceTier
            {
                UpToGpuHours = tier.UpToGpuHours is { } u ? DecimalText.Format(u) : "",
                UnitPrice = Money(tier.UnitPriceMicros, t.CurrencyCode),
            }));
            result.RateCard.Add(apiEntry);
        }

        if (t.IndexLinkage is { } il)
        {
            result.IndexLinkage = new V1.IndexLinkage
            {
                IndexName = il.IndexName,
                BaseValue = DecimalText.Format(il.BaseValue),
                PassThrough = DecimalText.Format(il.PassThrough),
                Floor = DecimalText.Format(il.Floor),
                Cap = DecimalText.Format(il.Cap),
            };
        }

        result.UtilizationBands.AddRange(t.UtilizationBands.Select(b => new V1.UtilizationBand
        {
            Metric = (V1.UtilizationMetric)(int)b.Metric,
            Min = DecimalText.Format(b.Min),
            Max = b.Max is { } m ? DecimalText.Format(m) : "",
            Multiplier = DecimalText.Format(b.Multiplier),
        }));
        result.Sla.CreditSchedule.AddRange(t.Sla.CreditSchedule.Select(r => new V1.SlaCreditRow
        {
            BelowPercent = DecimalText.Format(r.BelowPercent),
            CreditPercent = DecimalText.Format(r.CreditPercent),
        }));
        return result;
    }

    public static V1.Money Money(long micros, string currency) => new() { AmountMicros = micros, CurrencyCode = currency };

    private static T Required<T>(T fallback, string field, List<FieldViolation> v)
    {
        v.Add(new(field, "is required"));
        return fallback;
    }

    private static long Amount(V1.Money money, string currency, string field, List<FieldViolation> v)
    {
        if (money.CurrencyCode != currency)
        {
            v.Add(new($"{field}.currency_code", $"must be the contract's currency '{currency}', not '{money.CurrencyCode}'"));
        }

        return money.AmountMicros;
    }

    private static decimal Decimal(string text, string field, List<FieldViolation> v)
    {
        if (DecimalText.TryParse(text, out var value))
        {
            return value;
        }

        v.Add(new(field, text.Length == 0 ? "is required (a decimal string such as \"0.95\")" : $"{DomainErrors.Quote(text)} is not a decimal string such as \"0.95\""));
        return 0m;
    }

    private static DateTimeOffset Time(Timestamp? t, string field, List<FieldViolation> v) =>
        RequestFields.Time(t, field, v, required: true) ?? DateTimeOffset.UnixEpoch;
}
