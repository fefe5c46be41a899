namespace Procurement.Storage.Sqlite;

/// <summary>
/// Running totals of the SQLite writer's work since the store opened: how many units and groups, how
/// long units waited for their group to start, and how long groups spent running units and
/// committing. A unit run again after its group was rolled back counts once per run, and its wait runs
/// from when it was queued to the start of the group it runs in. Written by the writer alone, read
/// from any thread (the periodic writer report, the benchmark); two readings a while apart give the
/// writer's load in between (<see cref="WriterTotals.Since"/>).
/// </summary>
public sealed class WriterStats
{
    private readonly TimeProvider _time;
    private readonly long _opened;
    private long _units;
    private long _groups;
    private long _queued;
    private long _running;
    private long _committing;
    private long _slowestRun;
    private long _slowestCommit;
    private long _checkpoints;
    private long _checkpointing;
    private long _slowestCheckpoint;

    public WriterStats(TimeProvider time)
    {
        _time = time;
        _opened = time.GetTimestamp();
    }

    internal long Timestamp() => _time.GetTimestamp();

    internal TimeSpan Elapsed(long from, long to) => Duration(to - from);

    /// <summary>Counts a group: its units, the sum of their waits, and its two phases, in <see cref="TimeProvider"/> timestamp ticks.</summary>
    internal void Group(int units, long queuedTicks, long runningTicks, long committingTicks)
    {
        Interlocked.Add(ref _units, units);
        Interlocked.Add(ref _queued, queuedTicks);
        Interlocked.Add(ref _running, runningTicks);
        Interlocked.Add(ref _committing, committingTicks);
        Interlocked.Increment(ref _groups);
        Max(ref _slowestRun, runningTicks);
        Max(ref _slowestCommit, committingTicks);
    }

    /// <summary>Counts a checkpoint of the WAL into the database file (made off the writer).</summary>
    internal void Checkpoint(long ticks)
    {
        Interlocked.Increment(ref _checkpoints);
        Interlocked.Add(ref _checkpointing, ticks);
        Max(ref _slowestCheckpoint, ticks);
    }

    /// <summary>The slowest run of a group's units, commit and checkpoint since the last call: a stall shows here first.</summary>
    public (TimeSpan Run, TimeSpan Commit, TimeSpan Checkpoint) TakeSlowest() =>
        (Duration(Interlocked.Exchange(ref _slowestRun, 0)), Duration(Interlocked.Exchange(ref _slowestCommit, 0)), Duration(Interlocked.Exchange(ref _slowestCheckpoint, 0)));

    /// <summary>Checkpoints made so far and the time they took.</summary>
    public (long Count, TimeSpan Time) Checkpoints => (Interlocked.Read(ref _checkpoints), Duration(Interlocked.Read(ref _checkpointing)));

    private static void Max(ref long slot, long value)
    {
        var seen = Interlocked.Read(ref slot);
        while (value > seen && Interlocked.CompareExchange(ref slot, value, seen) is var was && was != seen)
        {
            seen = was;
        }
    }

    public WriterTotals Read() => new(
        _time.GetElapsedTime(_opened),
        Interlocked.Read(ref _units),
        Interlocked.Read(ref _groups),
        Duration(Interlocked.Read(ref _queued)),
        Duration(Interlocked.Read(ref _running)),
        Duration(Interlocked.Read(ref _committing)));

    private TimeSpan Duration(long ticks) => TimeSpan.FromSeconds((double)ticks / _time.TimestampFrequency);
}

/// <summary>
/// What the writer did over <see cref="Elapsed"/> (since the store opened, or between two readings):
/// <see cref="Queued"/> is summed over units, <see cref="RunningUnits"/> and <see cref="Committing"/> over groups.
/// </summary>
public readonly record struct WriterTotals(TimeSpan Elapsed, long Units, long Groups, TimeSpan Queued, TimeSpan RunningUnits, TimeSpan Committing)
{
    /// <summary>The work done between <paramref name="earlier"/> and this reading.</summary>
    public WriterTotals Since(WriterTotals earlier) => new(
        Elapsed - earlier.Elapsed, Units - earlier.Units, Groups - earlier.Groups,
        Queued - earlier.Queued, RunningUnits - earlier.RunningUnits, Committing - earlier.Committing);

    /// <summary>The share of <see cref="Elapsed"/> the writer spent running units or committing, 0 to 1.</summary>
    public double Busy => Elapsed > TimeSpan.Zero ? Math.Min(1, (RunningUnits + Committing) / Elapsed) : 0;
}
