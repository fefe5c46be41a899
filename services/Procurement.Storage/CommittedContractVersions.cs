using System.Collections.Concurrent;
using Procurement.Domain.Contracts;

namespace Procurement.Storage;

/// <summary>
/// The terms versions of contracts as committed, by contract id and revision, shared by all reads.
/// Every change to a contract commits a new revision (its etag), so a committed (id, revision) names
/// one set of versions forever; a read that finds its row's revision here skips loading and parsing
/// the versions. Filled only from read snapshots, which see committed data alone.
/// </summary>
public sealed class CommittedContractVersions
{
    private readonly ConcurrentDictionary<string, (long Revision, IReadOnlyList<ContractVersion> Versions)> _entries = new(StringComparer.Ordinal);

    public bool TryGet(string contractId, long revision, out IReadOnlyList<ContractVersion> versions)
    {
        if (_entries.TryGetValue(contractId, out var entry) && entry.Revision == revision)
        {
            versions = entry.Versions;
            return true;
        }

        versions = [];
        return false;
    }

    /// <summary>Remembers the versions of a committed revision (an older revision never replaces a newer one).</summary>
    public void Put(string contractId, long revision, IReadOnlyList<ContractVersion> versions) =>
        _entries.AddOrUpdate(contractId, (revision, versions), (_, existing) => existing.Revision > revision ? existing : (revision, versions));
}
