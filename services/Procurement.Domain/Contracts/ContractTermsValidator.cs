using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Domain.Money;

namespace Procurement.Domain.Contracts;

/// <summary>What the validator needs to know of a pool.</summary>
public sealed record PoolFacts(string PoolId, string AcceleratorType);

/// <summary>
/// Checks a set of terms as a whole and reports every bad field, with paths relative to the terms
/// message (the caller adds its own prefix, e.g. <c>terms.</c>).
/// </summary>
public static class ContractTermsValidator
{
    public static IReadOnlyList<FieldViolation> Validate(ContractTerms terms, IReadOnlyDictionary<string, PoolFacts> pools)
    {
        var v = new List<FieldViolation>();

        if (terms.EndTime <= terms.StartTime)
        {
            v.Add(new("end_time", "must be after start_time"));
        }

        var currencyKnown = Currency.IsKnown(terms.CurrencyCode);
        if (!currencyKnown)
        {
            v.Add(new("currency_code", $"'{terms.CurrencyCode}' is not an ISO 4217 currency code in current use"));
        }

        if (terms.MonthlyCommitmentMicros < 0)
        {
            v.Add(new("monthly_commitment.amount_micros", "must be >= 0"));
        }

        ValidateEntitlements(terms, pools, v);
        ValidateRateCard(terms, pools, v);
        if (terms.IndexLinkage is { } index)
        {
            ValidateIndexLinkage(index, v);
        }

        ValidateBands(terms.UtilizationBands, v);
        ValidateSla(terms.Sla, v);
        ValidateBlockTerms(terms, v);
        return v;
    }

    private static void ValidateBlockTerms(ContractTerms terms, List<FieldViolation> v)
    {
        var types = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < terms.BlockRates.Count; i++)
        {
            var rate = terms.BlockRates[i];
            var path = $"block_rates[{i}]";
            if (!Identifiers.IsToken(rate.AcceleratorType))
            {
                v.Add(new($"{path}.accelerator_type", "must be 1..64 characters of [A-Za-z0-9._-]"));
            }
            else if (!types.Add(rate.AcceleratorType))
            {
                v.Add(new($"{path}.accelerator_type", $"'{rate.AcceleratorType}' has more than one block rate"));
            }

            if (rate.UnitPriceMicros < 0)
            {
                v.Add(new($"{path}.unit_price.amount_micros", "must be >= 0"));
            }
        }

        if (terms.BlockCancellationNotice < TimeSpan.Zero || terms.BlockCancellationNotice > Blocks.BlockCalendar.BookingHorizon)
        {
            v.Add(new("block_cancellation_notice", "must be 0 to 365 days"));
        }
    }

    private static void ValidateEntitlements(ContractTerms terms, IReadOnlyDictionary<string, PoolFacts> pools, List<FieldViolation> v)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < terms.Entitlements.Count; i++)
        {
            var e = terms.Entitlements[i];
            var path = $"entitlements[{i}]";
            if (!pools.ContainsKey(e.PoolId))
            {
                v.Add(new($"{path}.pool_id", $"pool '{e.PoolId}' does not exist"));
            }
            else if (!seen.Add(e.PoolId))
            {
                v.Add(new($"{path}.pool_id", $"pool '{e.PoolId}' is listed more than once"));
            }

            if (e.ReservedUnits < 0)
            {
                v.Add(new($"{path}.reserved_units", "must be >= 0"));
            }

            if (e.BurstLimitUnits < 0)
            {
                v.Add(new($"{path}.burst_limit_units", "must be >= 0"));
            }

            if (e.MaxBlockUnits < 0)
            {
                v.Add(new($"{path}.max_block_units", "must be >= 0"));
            }
            else if (e.MaxBlockUnits > 0 && pools.TryGetValue(e.PoolId, out var facts) && terms.BlockRateFor(facts.AcceleratorType) is null)
            {
                v.Add(new($"{path}.max_block_units", $"needs a block rate for '{facts.AcceleratorType}' in block_rates"));
            }
        }
    }

    private static void ValidateRateCard(ContractTerms terms, IReadOnlyDictionary<string, PoolFacts> pools, List<FieldViolation> v)
    {
        var types = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < terms.RateCard.Count; i++)
        {
            var entry = terms.RateCard[i];
            var path = $"rate_card[{i}]";
            if (!Identifiers.IsToken(entry.AcceleratorType))
            {
                v.Add(new($"{path}.accelerator_type", "must be 1..64 characters of [A-Za-z0-9._-]"));
            }
            else if (!types.Add(entry.AcceleratorType))
            {
                v.Add(new($"{path}.accelerator_type", $"'{entry.AcceleratorType}' has more than one rate card entry"));
            }

            if (!Enum.IsDefined(entry.Mode))
            {
                v.Add(new($"{path}.mode", "must be GRADUATED or VOLUME"));
            }

            if (entry.Tiers.Count == 0)
            {
                v.Add(new($"{path}.tiers", "must have at least one tier, the last one unbounded"));
                continue;
            }

            decimal? previous = null;
            for (var t = 0; t < entry.Tiers.Count; t++)
            {
                var tier = entry.Tiers[t];
                var tierPath = $"{path}.tiers[{t}]";
                var isLast = t == entry.Tiers.Count - 1;
                if (tier.UpToGpuHours is null)
                {
                    if (!isLast)
                    {
                        v.Add(new($"{tierPath}.up_to_gpu_hours", "only the last tier may be unbounded"));
                    }
                }
                else
                {
                    if (isLast)
                    {
                        v.Add(new($"{tierPath}.up_to_gpu_hours", "the last tier must be unbounded (leave up_to_gpu_hours empty)"));
                    }

                    if (tier.UpToGpuHours <= 0)
                    {
                        v.Add(new($"{tierPath}.up_to_gpu_hours", "must be > 0"));
                    }
                    else if (previous is { } p && tier.UpToGpuHours <= p)
                    {
                        v.Add(new($"{tierPath}.up_to_gpu_hours", $"tiers must be strictly ascending: {DecimalText.Format(tier.UpToGpuHours.Value)} is not above {DecimalText.Format(p)}"));
                    }

                    previous = tier.UpToGpuHours;
                }

                if (tier.UnitPriceMicros < 0)
                {
                    v.Add(new($"{tierPath}.unit_price.amount_micros", "must be >= 0"));
                }
            }
        }

        // Every accelerator type of an entitled pool must be priced.
        for (var i = 0; i < terms.Entitlements.Count; i++)
        {
            if (pools.TryGetValue(terms.Entitlements[i].PoolId, out var pool) && !types.Contains(pool.AcceleratorType))
            {
                v.Add(new("rate_card", $"has no entry for accelerator type '{pool.AcceleratorType}' of pool '{pool.PoolId}' (entitlements[{i}])"));
            }
        }
    }

    private static void ValidateIndexLinkage(IndexLinkage index, List<FieldViolation> v)
    {
        if (!Identifiers.IsToken(index.IndexName))
        {
            v.Add(new("index_linkage.index_name", "must be 1..64 characters of [A-Za-z0-9._-]"));
        }

        if (index.BaseValue <= 0)
        {
            v.Add(new("index_linkage.base_value", "must be > 0"));
        }

        if (index.PassThrough is < 0 or > 1)
        {
            v.Add(new("index_linkage.pass_through", "must be between 0 and 1"));
        }

        if (index.Floor <= 0)
        {
            v.Add(new("index_linkage.floor", "must be > 0"));
        }

        if (index.Floor > index.Cap)
        {
            v.Add(new("index_linkage.floor", $"must not be above cap ({DecimalText.Format(index.Cap)})"));
        }
    }

    private static void ValidateBands(IReadOnlyList<UtilizationBand> bands, List<FieldViolation> v)
    {
        for (var i = 0; i < bands.Count; i++)
        {
            var b = bands[i];
            var path = $"utilization_bands[{i}]";
            if (!Enum.IsDefined(b.Metric))
            {
                v.Add(new($"{path}.metric", "must be RESERVATION_UTILIZATION or POOL_UTILIZATION"));
            }

            if (b.Min is < 0 or > 1)
            {
                v.Add(new($"{path}.min", "must be between 0 and 1"));
            }

            if (b.Max is { } max && max <= b.Min)
            {
                v.Add(new($"{path}.max", "must be above min, or empty for unbounded"));
            }

            if (b.Multiplier < 0)
            {
                v.Add(new($"{path}.multiplier", "must be >= 0"));
            }

            var overlapped = Enumerable.Range(0, i).Where(j => bands[j].Metric == b.Metric && Overlaps(bands[j], b)).ToList();
            if (overlapped.Count > 0)
            {
                v.Add(new($"{path}.min", "overlaps " + string.Join(", ", overlapped.Select(j => $"utilization_bands[{j}]")) + " of the same metric"));
            }
        }
    }

    private static bool Overlaps(UtilizationBand a, UtilizationBand b) =>
        a.Min < (b.Max ?? decimal.MaxValue) && b.Min < (a.Max ?? decimal.MaxValue);

    private static void ValidateSla(SlaTerms sla, List<FieldViolation> v)
    {
        if (sla.AvailabilityTargetPercent is <= 0 or > 100)
        {
            v.Add(new("sla.availability_target_percent", "must be in (0, 100]"));
        }

        if (sla.CreditCapPercent is < 0 or > 100)
        {
            v.Add(new("sla.credit_cap_percent", "must be between 0 and 100"));
        }

        if (sla.MaintenanceNotice < TimeSpan.Zero)
        {
            v.Add(new("sla.maintenance_notice", "must be >= 0"));
        }

        for (var i = 0; i < sla.CreditSchedule.Count; i++)
        {
            var row = sla.CreditSchedule[i];
            var path = $"sla.credit_schedule[{i}]";
            if (row.BelowPercent is <= 0 or > 100)
            {
                v.Add(new($"{path}.below_percent", "must be in (0, 100]"));
            }

            if (row.CreditPercent is < 0 or > 100)
            {
                v.Add(new($"{path}.credit_percent", "must be between 0 and 100"));
            }

            if (i > 0)
            {
                var prev = sla.CreditSchedule[i - 1];
                if (row.BelowPercent >= prev.BelowPercent)
                {
                    v.Add(new($"{path}.below_percent", "the schedule must be ordered by below_percent, strictly descending"));
                }
                else if (row.CreditPercent < prev.CreditPercent)
                {
                    v.Add(new($"{path}.credit_percent", "a lower threshold must not earn a smaller credit"));
                }
            }
        }
    }
}
