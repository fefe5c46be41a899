using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Common;
using Procurement.Domain.Pricing;
using Procurement.Domain.Sla;
using Procurement.Server.Application;
using V1 = Procurement.Api.V1;

namespace Procurement.Server.Mapping;

/// <summary>Statements and SLA reports to API messages: decimals normalized, so equal values print equally.</summary>
public static class StatementMapper
{
    public static string Dec(decimal value) => DecimalText.Format(MoneyMath.Normalize(value));

    public static string Dec(decimal? value) => value is { } v ? Dec(v) : "";

    public static V1.Statement ToApi(this StatementComputation c)
    {
        var p = c.Period;
        var statement = ToApi(c.Result, p.Month, p.Version.Version, isQuote: false);
        statement.ContractId = p.Contract.Id;
        statement.TenantId = p.Contract.TenantId;
        statement.Provisional = p.Provisional;
        statement.PeriodStart = Timestamp.FromDateTimeOffset(p.From);
        statement.PeriodEnd = Timestamp.FromDateTimeOffset(p.To);
        statement.Metrics.ReservedGpuHours = Dec(c.ReservedGpuHours);
        statement.Metrics.GuaranteedGpuHours = Dec(c.Pools.Sum(x => x.GuaranteedGpuHours));
        statement.Metrics.BurstGpuHours = Dec(c.Pools.Sum(x => x.BurstGpuHours));
        statement.Metrics.BusyFraction = Dec(c.BusyFraction);
        statement.Pools.AddRange(c.Pools.Select(x => new V1.PoolUsage
        {
            PoolId = x.PoolId,
            AcceleratorType = x.AcceleratorType,
            ReservedUnits = x.ReservedUnits,
            GpuHours = Dec(x.GpuHours),
            GuaranteedGpuHours = Dec(x.GuaranteedGpuHours),
            BurstGpuHours = Dec(x.BurstGpuHours),
            ReservedGpuHours = Dec(x.ReservedGpuHours),
            PoolUtilization = Dec(x.PoolUtilization),
            BusyGpuHours = Dec(x.BusyGpuHours),
            BlockGpuHours = x.BlockGpuHours == 0 ? "" : Dec(x.BlockGpuHours),
        }));
        return statement;
    }

    /// <summary>The lines, total, index and metrics; quotes leave the guaranteed/burst split empty (it is not projected).</summary>
    public static V1.Statement ToApi(StatementResult r, BillingMonth month, int termsVersion, bool isQuote)
    {
        var currency = r.CurrencyCode;
        var statement = new V1.Statement
        {
            Month = new V1.BillingMonth { Year = month.Year, Month = month.Month },
            CurrencyCode = currency,
            TermsVersion = termsVersion,
            Total = TermsMapper.Money(MoneyMath.ToMicros(r.Total), currency),
            Index = new V1.IndexApplied
            {
                IndexName = r.Index.Value?.IndexName ?? "",
                Value = Dec(r.Index.Value?.Value),
                Factor = Dec(r.Index.Factor),
                UnclampedFactor = Dec(r.Index.UnclampedFactor),
                Note = r.Index.Note,
            },
            Metrics = new V1.StatementMetrics
            {
                ReservationUtilization = Dec(r.Metrics.ReservationUtilization),
                PoolUtilization = Dec(r.Metrics.PoolUtilization),
            },
        };
        if (r.Index.Value is { } value)
        {
            statement.Index.EffectiveTime = Timestamp.FromDateTimeOffset(value.EffectiveAt);
        }

        foreach (var line in r.Lines)
        {
            var api = new V1.StatementLine
            {
                Kind = (V1.StatementLineKind)(int)line.Kind,
                Description = line.Description,
                Amount = TermsMapper.Money(MoneyMath.ToMicros(line.Amount), currency),
                UnroundedAmount = Dec(line.UnroundedAmount),
            };
            switch (line.Kind)
            {
                case StatementLineKind.Usage:
                    api.Usage = new V1.UsageLineDetail
                    {
                        AcceleratorType = line.Usage!.AcceleratorType,
                        Mode = (V1.PricingMode)(int)line.Mode!.Value,
                        GpuHours = Dec(line.Usage.GpuHours),
                        GuaranteedGpuHours = isQuote ? "" : Dec(line.Usage.GuaranteedGpuHours),
                        BurstGpuHours = isQuote ? "" : Dec(line.Usage.BurstGpuHours),
                        IndexFactor = Dec(r.Index.Factor),
                        BlockGpuHours = line.Usage.BlockGpuHours == 0 ? "" : Dec(line.Usage.BlockGpuHours),
                    };
                    api.Usage.Tiers.AddRange(line.Tiers!.Select(t => new V1.TierChargeDetail
                    {
                        TierIndex = t.TierIndex,
                        UpToGpuHours = Dec(t.UpToGpuHours),
                        GpuHours = Dec(t.GpuHours),
                        BaseUnitPrice = TermsMapper.Money(t.BaseUnitPriceMicros, currency),
                        UnitPrice = Dec(t.UnitPrice),
                        Amount = Dec(t.Amount),
                    }));
                    break;
                case StatementLineKind.UtilizationAdjustment:
                    api.Adjustment = new V1.AdjustmentLineDetail { BaseAmount = Dec(line.Base), Multiplier = Dec(line.Multiplier) };
                    api.Adjustment.Bands.AddRange(line.Bands!.Select(b => new V1.MatchedBand
                    {
                        BandIndex = b.BandIndex,
                        Metric = (V1.UtilizationMetric)(int)b.Band.Metric,
                        Min = Dec(b.Band.Min),
                        Max = Dec(b.Band.Max),
                        Multiplier = Dec(b.Band.Multiplier),
                        MetricValue = Dec(b.MetricValue),
                    }));
                    break;
                case StatementLineKind.CommitmentTrueUp:
                    api.TrueUp = new V1.TrueUpLineDetail
                    {
                        MonthlyCommitment = TermsMapper.Money(MoneyMath.ToMicros(line.MonthlyCommitment!.Value), currency),
                        TermFraction = Dec(line.TermFraction),
                        ProratedCommitment = Dec(line.ProratedCommitment),
                        AdjustedUsage = Dec(line.Base),
                    };
                    break;
                case StatementLineKind.CapacityBlocks:
                    api.Blocks = new V1.BlocksLineDetail();
                    api.Blocks.Blocks.AddRange(line.Blocks!.Select(b => new V1.BlockChargeDetail
                    {
                        BlockId = b.Block.BlockId,
                        PoolId = b.Block.PoolId,
                        Units = b.Block.Units,
                        StartTime = b.Block.StartTime is { } start ? Timestamp.FromDateTimeOffset(start) : null,
                        EndTime = b.Block.EndTime is { } end ? Timestamp.FromDateTimeOffset(end) : null,
                        GpuHours = Dec(b.Block.GpuHours),
                        UnitPrice = Dec(b.Block.UnitPrice),
                        Amount = TermsMapper.Money(MoneyMath.ToMicros(b.Amount), currency),
                        UnroundedAmount = Dec(b.Block.UnroundedAmount),
                        CancellationCharge = b.Block.CancellationCharge,
                    }));
                    break;
                case StatementLineKind.SlaCredit:
                    api.Credit = new V1.CreditLineDetail
                    {
                        UptimePercent = Dec(line.Sla!.UptimePercent),
                        BelowPercent = Dec(line.Sla.Row?.BelowPercent),
                        CreditPercent = Dec(line.CreditPercent),
                        CapPercent = Dec(line.CapPercent),
                        Charges = Dec(line.Base),
                    };
                    break;
            }

            statement.Lines.Add(api);
        }

        return statement;
    }

    public static V1.SlaReport ToApi(this UptimeResult r, BillingPeriod p)
    {
        var report = new V1.SlaReport
        {
            ContractId = p.Contract.Id,
            Month = new V1.BillingMonth { Year = p.Month.Year, Month = p.Month.Month },
            TermsVersion = p.Version.Version,
            Provisional = p.Provisional,
            PeriodStart = Timestamp.FromDateTimeOffset(p.From),
            PeriodEnd = Timestamp.FromDateTimeOffset(p.To),
            ReservedGpuMinutes = Dec(r.ReservedMinutes),
            DowntimeGpuMinutes = Dec(r.DowntimeMinutes),
            UptimePercent = Dec(r.UptimePercent),
            TargetPercent = Dec(r.TargetPercent),
            TargetMet = r.TargetMet,
            CreditBelowPercent = Dec(r.CreditRow?.BelowPercent),
            CreditPercent = Dec(r.CreditRow?.CreditPercent ?? 0m),
            ErrorBudgetMinutes = Dec(r.ErrorBudgetMinutes),
            ErrorBudgetUsedMinutes = Dec(r.DowntimeMinutes),
            ErrorBudgetLeftMinutes = Dec(r.ErrorBudgetLeftMinutes),
        };
        report.Incidents.AddRange(r.Incidents.Select(i => new V1.IncidentImpact
        {
            Incident = i.Incident.ToApi(),
            Counted = i.Counted,
            DowntimeGpuMinutes = Dec(i.DowntimeMinutes),
            Explanation = i.Explanation,
        }));
        return report;
    }

    public static V1.Incident ToApi(this Incident i)
    {
        var result = new V1.Incident
        {
            IncidentId = i.Id,
            PoolId = i.PoolId,
            Kind = (V1.IncidentKind)(int)i.Kind,
            StartTime = Timestamp.FromDateTimeOffset(i.Start),
            AffectedUnits = i.AffectedUnits,
            CreateTime = Timestamp.FromDateTimeOffset(i.CreatedAt),
            UpdateTime = Timestamp.FromDateTimeOffset(i.UpdatedAt),
        };
        if (i.End is { } end)
        {
            result.EndTime = Timestamp.FromDateTimeOffset(end);
        }

        if (i.AnnouncedAt is { } announced)
        {
            result.AnnounceTime = Timestamp.FromDateTimeOffset(announced);
        }

        return result;
    }
}
