using Microsoft.Extensions.Options;
using Procurement.Server.Application;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>
/// Folds each pool's timeline into the per-month totals statements read (<see cref="UsageTotals"/>),
/// one unit of work per pool, every <see cref="ServerOptions.FoldInterval"/>. The first pass after an
/// upgrade folds the history that is already stored. Driven by the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class UsageFolder(IProcurementStore store, TimeProvider time, IOptions<ServerOptions> options, ILogger<UsageFolder> logger)
    : BackgroundService
{
    /// <summary>One pass over every pool at the current time; returns the pools that had something to fold.</summary>
    public async Task<int> FoldOnceAsync(CancellationToken cancellationToken)
    {
        var pools = await store.ReadAsync(async s => (await s.Totals.PoolIdsAsync()).ToList(), cancellationToken);
        var folded = 0;
        foreach (var pool in pools)
        {
            // The time is taken inside the unit, so it follows the commits before it.
            if (await store.WriteAsync(s => UsageTotals.FoldPoolAsync(s, pool, Mutations.TruncateToMilliseconds(time.GetUtcNow())), cancellationToken))
            {
                folded++;
            }
        }

        return folded;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.FoldInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                Log.Folded(logger, await FoldOnceAsync(stoppingToken));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.Failed(logger, ex);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3501, Level = LogLevel.Debug, Message = "Folded the usage of {Count} pools")]
        public static partial void Folded(ILogger logger, int count);

        [LoggerMessage(EventId = 3502, Level = LogLevel.Error, Message = "Folding usage failed; statements read more history until the next fold succeeds")]
        public static partial void Failed(ILogger logger, Exception exception);
    }
}
