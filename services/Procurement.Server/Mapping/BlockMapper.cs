using Google.Protobuf.WellKnownTypes;
using Procurement.Domain.Blocks;
using Procurement.Domain.Common;
using Procurement.Domain.Pricing;
using Procurement.Server.Application;
using V1 = Procurement.Api.V1;

namespace Procurement.Server.Mapping;

public static class BlockMapper
{
    public static V1.CapacityBlock ToApi(this CapacityBlock b, string currency)
    {
        var result = new V1.CapacityBlock
        {
            BlockId = b.Id,
            ContractId = b.ContractId,
            TenantId = b.TenantId,
            PoolId = b.PoolId,
            Units = b.Units,
            StartTime = Timestamp.FromDateTimeOffset(b.StartTime),
            EndTime = Timestamp.FromDateTimeOffset(b.EndTime),
            State = (V1.CapacityBlockState)(int)b.State,
            UnitPrice = DecimalText.Format(MoneyMath.Normalize(b.UnitPrice)),
            BlockRate = TermsMapper.Money(b.RateMicros, currency),
            IndexFactor = DecimalText.Format(MoneyMath.Normalize(b.IndexFactor)),
            Price = Rounded(b.FullAmount, currency),
            Etag = b.Id.Length == 0 ? "" : b.Etag,
            BookTime = Timestamp.FromDateTimeOffset(b.BookedAt),
        };
        if (b.CancelledAt is { } cancelled)
        {
            result.CancelTime = Timestamp.FromDateTimeOffset(cancelled);
            result.CancellationCharge = Rounded(b.CancellationCharged ? b.FullAmount : 0m, currency);
        }

        return result;
    }

    public static V1.CapacityBlockOffering ToApi(this BlockOffering o, string currency) => new()
    {
        StartTime = Timestamp.FromDateTimeOffset(o.Start),
        EndTime = Timestamp.FromDateTimeOffset(o.End),
        Units = o.Units,
        UnitPrice = DecimalText.Format(MoneyMath.Normalize(o.UnitPrice)),
        Price = Rounded(o.Price, currency),
    };

    /// <summary>An amount rounded to the currency's minor unit, half to even, as statements round a line.</summary>
    public static V1.Money Rounded(decimal amount, string currency) =>
        TermsMapper.Money(MoneyMath.ToMicros(MoneyMath.RoundToMinorUnit(amount, currency)), currency);
}
