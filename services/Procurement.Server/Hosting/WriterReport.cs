using Microsoft.Extensions.Options;
using Procurement.Storage;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Hosting;

/// <summary>
/// Every <see cref="ServerOptions.WriterReportInterval"/> (off by default), logs what the SQLite
/// writer did since the last report: units and groups, how long a unit waited for its group to
/// start, a group's time running units and committing, and the share of the interval the writer was
/// busy. A writer near 100% busy sets the rate of writes; one that is not leaves the rest to the stack.
/// </summary>
public sealed partial class WriterReport(IProcurementStore store, TimeProvider time, IOptions<ServerOptions> options, ILogger<WriterReport> logger)
    : BackgroundService
{
    private readonly Lock _gate = new();
    // The first report covers what the writer did after the report was created.
    private WriterTotals _last = store is SqliteStore sqlite ? sqlite.Stats.Read() : default;
    private TimeSpan _lastPause = GC.GetTotalPauseDuration();
    private int _lastGen2 = GC.CollectionCount(2);

    /// <summary>Logs the writer's work since the previous call (or since the report was created) and returns it; nothing for a store without a SQLite writer.</summary>
    public WriterTotals? ReportOnce()
    {
        if (store is not SqliteStore sqlite)
        {
            return null;
        }

        WriterTotals span;
        TimeSpan paused;
        int gen2;
        lock (_gate)
        {
            var now = sqlite.Stats.Read();
            span = now.Since(_last);
            _last = now;
            // The runtime's own pauses over the same interval: a stalled group beside a long pause is the GC's.
            var pause = GC.GetTotalPauseDuration();
            (paused, _lastPause) = (pause - _lastPause, pause);
            var collections = GC.CollectionCount(2);
            (gen2, _lastGen2) = (collections - _lastGen2, collections);
        }

        var (slowestRun, slowestCommit, slowestCheckpoint) = sqlite.Stats.TakeSlowest();
        if (span.Groups > 0)
        {
            Log.Writer(logger, span.Elapsed.TotalSeconds, span.Units, span.Groups, (double)span.Units / span.Groups,
                span.Queued.TotalMilliseconds / span.Units, span.RunningUnits.TotalMilliseconds / span.Groups,
                span.Committing.TotalMilliseconds / span.Groups, span.Busy * 100, slowestRun.TotalMilliseconds, slowestCommit.TotalMilliseconds,
                slowestCheckpoint.TotalMilliseconds, paused.TotalMilliseconds, gen2);
        }

        return span;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.WriterReportInterval;
        if (interval <= TimeSpan.Zero || store is not SqliteStore)
        {
            return;
        }

        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            ReportOnce();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3301, Level = LogLevel.Information, Message =
            "SQLite writer over {Seconds:F1} s: {Units} units in {Groups} groups ({UnitsPerGroup:F1} per group); a unit waited {QueuedMs:F2} ms for its group; " +
            "a group ran its units for {RunningMs:F2} ms and committed in {CommitMs:F2} ms; busy {BusyPercent:F0}%; " +
            "slowest run {SlowestRunMs:F1} ms, commit {SlowestCommitMs:F1} ms, checkpoint (off the writer) {SlowestCheckpointMs:F1} ms; GC paused {GcPauseMs:F1} ms, {Gen2} gen2")]
        public static partial void Writer(ILogger logger, double seconds, long units, long groups, double unitsPerGroup, double queuedMs, double runningMs, double commitMs, double busyPercent,
            double slowestRunMs, double slowestCommitMs, double slowestCheckpointMs, double gcPauseMs, int gen2);
    }
}
