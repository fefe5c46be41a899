using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Domain.Common;
using Procurement.Domain.Errors;
using Procurement.Domain.Pricing;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using IndexValue = Procurement.Domain.Pricing.IndexValue;
using Model = Procurement.Domain.Contracts;

namespace Procurement.Server.Services;

/// <summary>ContractService, part two: index values, statements and quotes.</summary>
public sealed partial class ContractGrpcService
{
    private const string IndexValueResource = "index_value";

    public override Task<PublishIndexValueResponse> PublishIndexValue(PublishIndexValueRequest request, ServerCallContext context)
    {
        var v = new List<FieldViolation>();
        if (!Identifiers.IsToken(request.IndexName))
        {
            v.Add(new("index_name", "must be 1..64 characters of [A-Za-z0-9._-]"));
        }

        var effective = RequestFields.Time(request.EffectiveTime, "effective_time", v, required: true);
        var value = RequestFields.Decimal(request.Value, "value", v, 0m, decimal.MaxValue, required: true);
        if (value == 0m)
        {
            v.Add(new("value", "must be > 0"));
        }

        DomainErrors.ThrowIfAny(v);
        var published = new IndexValue(request.IndexName, effective!.Value, value!.Value);
        return mutations.RunAsync(context, request, request.RequestId, async m =>
        {
            var existing = await m.Session.IndexValues.GetAsync(published.IndexName, published.EffectiveAt);
            if (existing is not null && existing.Value.Value != published.Value)
            {
                throw new ProcurementException(ErrorKind.AlreadyExists, ErrorReasons.AlreadyExists,
                    $"{published.IndexName} already has the value {DecimalText.Format(existing.Value.Value)} at {published.EffectiveAt:O}; published values are immutable because statements depend on them.");
            }

            var stored = existing ?? new PublishedIndexValue(published, m.Now);
            if (existing is null)
            {
                await m.Session.IndexValues.InsertAsync(stored);
            }

            return new MutationResult<PublishIndexValueResponse>(new PublishIndexValueResponse { IndexValue = ToApi(stored) }, IndexValueResource,
                $"{published.IndexName}@{published.EffectiveAt.ToUnixTimeMilliseconds()}");
        });
    }

    public override async Task<ListIndexValuesResponse> ListIndexValues(ListIndexValuesRequest request, ServerCallContext context)
    {
        if (!Identifiers.IsToken(request.IndexName))
        {
            throw DomainErrors.Invalid("index_name", "must be 1..64 characters of [A-Za-z0-9._-]");
        }

        var pageSize = Paging.PageSize(request.PageSize);
        var filters = $"index|{request.IndexName}";
        var after = request.PageToken.Length == 0 ? long.MinValue : Paging.DecodeLong(request.PageToken, filters);
        var page = await store.ReadAsync(s => s.IndexValues.ListAsync(request.IndexName, after, pageSize + 1), context.CancellationToken);
        var response = new ListIndexValuesResponse();
        response.IndexValues.AddRange(page.Take(pageSize).Select(ToApi));
        if (page.Count > pageSize)
        {
            response.NextPageToken = Paging.Encode(page[pageSize - 1].Value.EffectiveAt.ToUnixTimeMilliseconds(), filters);
        }

        return response;
    }

    public override async Task<GetStatementResponse> GetStatement(GetStatementRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var v = new List<FieldViolation>();
        var month = RequestFields.Month(request.Month, "month", v);
        DomainErrors.ThrowIfAny(v);
        var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var statement = await store.ReadAsync(async s =>
        {
            var contract = await ContractOperations.LoadVisibleAsync(s, principal, request.ContractId);
            return await Billing.StatementAsync(s, Billing.Period(contract, month, now), now);
        }, context.CancellationToken);
        metrics.Computed("statement", System.Diagnostics.Stopwatch.GetElapsedTime(started));
        return new GetStatementResponse { Statement = statement.ToApi() };
    }

    public override async Task<QuoteContractResponse> QuoteContract(QuoteContractRequest request, ServerCallContext context)
    {
        var principal = context.GetPrincipal();
        var v = new List<FieldViolation>();
        var month = RequestFields.Month(request.Month, "month", v);
        var reservationUtilization = RequestFields.Decimal(request.ReservationUtilization, "reservation_utilization", v, 0m, 1m, required: false);
        var poolUtilization = RequestFields.Decimal(request.PoolUtilization, "pool_utilization", v, 0m, 1m, required: false);
        var indexValue = RequestFields.Decimal(request.IndexValue, "index_value", v, 0m, decimal.MaxValue, required: false);
        if (indexValue == 0m)
        {
            v.Add(new("index_value", "must be > 0"));
        }

        var uptime = RequestFields.Decimal(request.UptimePercent, "uptime_percent", v, 0m, 100m, required: false) ?? 100m;
        var usage = new List<UsageQuantity>();
        for (var i = 0; i < request.Usage.Count; i++)
        {
            var u = request.Usage[i];
            var hours = RequestFields.Decimal(u.GpuHours, $"usage[{i}].gpu_hours", v, 0m, decimal.MaxValue, required: true);
            if (usage.Any(x => x.AcceleratorType == u.AcceleratorType))
            {
                v.Add(new($"usage[{i}].accelerator_type", $"'{u.AcceleratorType}' is listed more than once"));
            }
            else if (hours is { } h)
            {
                usage.Add(new UsageQuantity(u.AcceleratorType, h, 0m, 0m));
            }
        }

        var blocks = new List<(string AcceleratorType, long Units, decimal Hours, int Index)>();
        for (var i = 0; i < request.Blocks.Count; i++)
        {
            var b = request.Blocks[i];
            var hours = RequestFields.Decimal(b.Hours, $"blocks[{i}].hours", v, 0m, 24m * 31, required: true);
            if (hours == 0m)
            {
                v.Add(new($"blocks[{i}].hours", "must be > 0"));
            }

            if (b.Units <= 0)
            {
                v.Add(new($"blocks[{i}].units", "must be > 0"));
            }
            else if (hours is { } h)
            {
                blocks.Add((b.AcceleratorType, b.Units, h, i));
            }
        }

        Model.ContractTerms? inlineTerms = null;
        if (request.ContractId.Length == 0)
        {
            inlineTerms = TermsMapper.ToDomain(request.Terms, "terms.", v);
        }

        if (request.ContractId.Length == 0 && request.Terms is null)
        {
            v.Add(new("contract_id", "give a contract_id or inline terms"));
        }

        DomainErrors.ThrowIfAny(v);
        return await store.ReadAsync(async s =>
        {
            Model.ContractTerms terms;
            var version = 0;
            if (inlineTerms is null)
            {
                var contract = await ContractOperations.LoadVisibleAsync(s, principal, request.ContractId);
                var applied = contract.VersionAt(Instants.Max(month.Start, contract.Versions[0].Terms.StartTime));
                (terms, version) = (applied.Terms, applied.Version);
            }
            else
            {
                await ContractOperations.ValidateTermsAsync(s, inlineTerms, v, "terms.");
                terms = inlineTerms;
            }

            foreach (var (u, i) in usage.Select((u, i) => (u, i)).Where(x => terms.RateCard.All(r => r.AcceleratorType != x.u.AcceleratorType)))
            {
                v.Add(new($"usage[{i}].accelerator_type", $"'{u.AcceleratorType}' is not on the rate card"));
            }

            foreach (var b in blocks.Where(b => terms.BlockRateFor(b.AcceleratorType) is null))
            {
                v.Add(new($"blocks[{b.Index}].accelerator_type", $"'{b.AcceleratorType}' has no block rate in the terms"));
            }

            DomainErrors.ThrowIfAny(v);
            IndexValue? index = null;
            if (terms.IndexLinkage is { } linkage)
            {
                var periodStart = Instants.Max(month.Start, terms.StartTime);
                index = indexValue is { } given
                    ? new IndexValue(linkage.IndexName, periodStart, given)
                    : (await s.IndexValues.LatestAtAsync(linkage.IndexName, periodStart))?.Value;
            }

            Procurement.Api.V1.Statement statement;
            try
            {
                var factor = IndexPricing.Factor(terms.IndexLinkage, index).Factor;
                var result = StatementCalculator.Compute(new StatementInputs(terms, month, usage,
                    new UtilizationMetrics(reservationUtilization, poolUtilization), index,
                    new SlaOutcome(uptime, StatementCalculator.CreditRow(terms.Sla, uptime)))
                {
                    Blocks = blocks.Select(b => new BlockCharge("", "", b.Units, null, null, b.Units * b.Hours,
                        MoneyMath.FromMicros(terms.BlockRateFor(b.AcceleratorType)!.UnitPriceMicros) * factor, false)).ToList(),
                });
                statement = StatementMapper.ToApi(result, month, version, isQuote: true);
            }
            catch (OverflowException)
            {
                // Each input is in range; their product is not (past int64 micros or decimal's 28 digits).
                throw new ProcurementException(ErrorKind.InvalidArgument, ErrorReasons.ValueOutOfRange,
                    "The quoted amounts cannot be represented in int64 micros; quote less usage or lower prices.",
                    [new FieldViolation("usage", "prices these GPU-hours at more than the largest representable amount")]);
            }

            statement.ContractId = request.ContractId;
            return new QuoteContractResponse { Statement = statement };
        }, context.CancellationToken);
    }

    private static Procurement.Api.V1.IndexValue ToApi(PublishedIndexValue v) => new()
    {
        IndexName = v.Value.IndexName,
        EffectiveTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(v.Value.EffectiveAt),
        Value = DecimalText.Format(v.Value.Value),
        PublishTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(v.PublishedAt),
    };
}
