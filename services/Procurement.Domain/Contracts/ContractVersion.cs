namespace Procurement.Domain.Contracts;

/// <summary>
/// One version of a contract's terms. The version in effect at an instant is the highest-numbered
/// version whose <see cref="EffectiveFrom"/> is at or before it; before the first effective time, version 1.
/// </summary>
public sealed record ContractVersion(int Version, DateTimeOffset EffectiveFrom, ContractTerms Terms, DateTimeOffset CreatedAt);

/// <summary>Which version applies when.</summary>
public static class VersionSchedule
{
    /// <summary>The version in effect at <paramref name="instant"/>.</summary>
    public static T At<T>(IReadOnlyList<T> versions, Func<T, int> number, Func<T, DateTimeOffset> effectiveFrom, DateTimeOffset instant)
    {
        T? best = default;
        var bestNumber = int.MinValue;
        T? lowest = default;
        var lowestNumber = int.MaxValue;
        foreach (var v in versions)
        {
            var n = number(v);
            if (effectiveFrom(v) <= instant && n > bestNumber)
            {
                best = v;
                bestNumber = n;
            }

            if (n < lowestNumber)
            {
                lowest = v;
                lowestNumber = n;
            }
        }

        return bestNumber != int.MinValue ? best! : lowest ?? throw new InvalidOperationException("A contract has at least one version.");
    }

    /// <summary>
    /// The versions that apply at some instant at or after <paramref name="from"/>: version k applies on
    /// [max(effective_k, from), min over higher versions j of effective_j) when that interval is not empty.
    /// </summary>
    public static IEnumerable<T> ApplicableFrom<T>(IReadOnlyList<T> versions, Func<T, int> number, Func<T, DateTimeOffset> effectiveFrom, DateTimeOffset from)
    {
        var current = At(versions, number, effectiveFrom, from);
        var currentNumber = number(current);
        foreach (var v in versions)
        {
            var n = number(v);
            if (n == currentNumber)
            {
                yield return v;
                continue;
            }

            var start = effectiveFrom(v) > from ? effectiveFrom(v) : from;
            if (start == from && n != currentNumber)
            {
                // Effective at or before `from` but not the current one: superseded already.
                continue;
            }

            var end = DateTimeOffset.MaxValue;
            foreach (var w in versions)
            {
                if (number(w) > n && effectiveFrom(w) < end)
                {
                    end = effectiveFrom(w);
                }
            }

            if (start < end)
            {
                yield return v;
            }
        }
    }
}
