using Microsoft.Extensions.Options;
using Procurement.Server.Application;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>
/// Ends what time ends: allocations past their end time and allocations of contracts whose term is
/// over, then retries the queues they free; starts and ends capacity blocks on time. Every admission also sweeps its own pool first, so this
/// only matters for pools nobody is calling about. Driven by the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class AllocationSweeper(IProcurementStore store, TimeProvider time, IOptions<ServerOptions> options, ILogger<AllocationSweeper> logger)
    : BackgroundService
{
    /// <summary>One pass at the current time; returns the pools swept.</summary>
    public Task<IReadOnlyList<string>> SweepOnceAsync(CancellationToken cancellationToken)
    {
        return store.WriteAsync<IReadOnlyList<string>>(async s =>
        {
            var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
            var pools = (await s.Allocations.PoolsWithDueAllocationsAsync(now)).Concat(await s.Blocks.PoolsDueAsync(now))
                .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            // Timed after the pools are held, as requests are: what it admits from a queue follows
            // what another replica committed before it.
            if (await s.LockPoolsAsync(pools))
            {
                now = Domain.Common.Instants.Max(now, Mutations.TruncateToMilliseconds(time.GetUtcNow()));
            }

            foreach (var pool in pools)
            {
                await AllocationEngine.SweepPoolAsync(s, pool, now);
            }

            return pools;
        }, cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var pools = await SweepOnceAsync(stoppingToken);
                if (pools.Count > 0)
                {
                    Log.Swept(logger, pools.Count);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.Failed(logger, ex);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3201, Level = LogLevel.Debug, Message = "Swept {Count} pools")]
        public static partial void Swept(ILogger logger, int count);

        [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "Sweep failed; retrying on the next tick")]
        public static partial void Failed(ILogger logger, Exception exception);
    }
}
