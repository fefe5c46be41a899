using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Procurement.Storage;

/// <summary>
/// What the write path reports, the same on both providers: how many units each commit group
/// carried, how long a unit waited for its group to start, and how long the commit took. Spans of the unit of work and the commit go to
/// <see cref="Activities"/>.
/// </summary>
public sealed class StorageInstruments
{
    public const string ActivitySourceName = "Procurement.Storage";

    public static readonly ActivitySource Activities = new(ActivitySourceName);

    private readonly Histogram<int> _groupUnits;
    private readonly Histogram<double> _groupWait;
    private readonly Histogram<double> _commitDuration;

    public StorageInstruments(Meter meter)
    {
        _groupUnits = meter.CreateHistogram<int>("procurement.storage.group.units", "{unit}", "Units of work committed together in one transaction.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128] });
        _groupWait = meter.CreateHistogram<double>("procurement.storage.group.wait", "s", "How long a unit of work waited for its commit group to start.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _commitDuration = meter.CreateHistogram<double>("procurement.storage.commit.duration", "s", "How long a group's durable commit took.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
    }

    public void GroupCommitted(int units, TimeSpan commit)
    {
        _groupUnits.Record(units);
        _commitDuration.Record(commit.TotalSeconds);
    }

    public void UnitWaited(TimeSpan wait) => _groupWait.Record(wait.TotalSeconds);

    /// <summary>Each allocation event once its transaction has committed (preemptions, queue admissions, expiries).</summary>
    public event Action<Repositories.AllocationEvent>? AllocationEventCommitted;

    internal void EventCommitted(Repositories.AllocationEvent e) => AllocationEventCommitted?.Invoke(e);
}
