using System.Collections.Concurrent;
using Procurement.Domain.Contracts;
using Procurement.Storage;

namespace Procurement.Server.Application;

/// <summary>
/// Answers of reads, reused while nothing can have changed them: the store has committed no change
/// since the read began (<see cref="IProcurementStore.StableCommitCount"/>) and the clock has not
/// reached the next instant at which a contract the answer depends on changes standing (its term's
/// start or end, or a terms version taking effect). Where the store cannot tell (PostgreSQL: other
/// replicas write), nothing is reused. Cached values are shared by every answer and never changed.
/// </summary>
public sealed class ReadCache<TValue>
    where TValue : class
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public TValue? Find(string key, long? commitCount, DateTimeOffset now) =>
        commitCount is { } count && _entries.TryGetValue(key, out var e) && e.CommitCount == count && now >= e.From && now < e.Until
            ? e.Value
            : null;

    /// <summary>Remembers a value computed at <paramref name="now"/> by a read begun when the count was <paramref name="commitCount"/>.</summary>
    public void Remember(string key, long? commitCount, DateTimeOffset now, IEnumerable<Contract> dependsOn, TValue value)
    {
        if (commitCount is { } count)
        {
            _entries[key] = new Entry(count, now, NextChange(dependsOn, now), value);
        }
    }

    /// <summary>The first instant after <paramref name="now"/> at which any of the contracts' state, terms version or standing changes.</summary>
    private static DateTimeOffset NextChange(IEnumerable<Contract> contracts, DateTimeOffset now)
    {
        var next = DateTimeOffset.MaxValue;
        foreach (var c in contracts)
        {
            foreach (var instant in c.Versions.Select(v => v.EffectiveFrom).Append(c.Versions[0].Terms.StartTime).Append(c.TermEnd))
            {
                if (instant > now && instant < next)
                {
                    next = instant;
                }
            }
        }

        return next;
    }

    private sealed record Entry(long CommitCount, DateTimeOffset From, DateTimeOffset Until, TValue Value);
}
