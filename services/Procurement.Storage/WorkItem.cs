using System.Diagnostics;

namespace Procurement.Storage;

/// <summary>A caller's unit of work waiting for a writer, and how its caller is answered.</summary>
internal abstract class WorkItem(CancellationToken cancellationToken)
{
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>When the unit was queued (a <see cref="Sqlite.WriterStats"/> timestamp).</summary>
    public long Enqueued { get; init; }

    /// <summary>The caller's trace, so the unit's spans join it although the writer runs them.</summary>
    public ActivityContext Trace { get; init; }

    /// <summary>Races the unit has lost (it runs again from the start).</summary>
    public int Attempts { get; set; }

    /// <summary>Times the unit waited for a later group.</summary>
    public int Deferrals { get; set; }

    /// <summary>What the unit asked to run once it is committed (<see cref="IStoreSession.OnCommitted"/>).</summary>
    public List<Action>? Committed { get; set; }

    /// <summary>
    /// Answers a committed group's callers off the writer, in one thread-pool work item per core, each
    /// running its share of the callers' continuations back to back (their tasks complete inline
    /// there). Under load the answers of a group then leave as a few runs of handler code instead of
    /// one scheduled work item each: a server's responses written in quick succession on one HTTP/2
    /// connection share its socket writes, and the callers read them in fewer wake-ups (in the
    /// benchmark, about a tenth less server CPU per admission pair and a fifth less for its callers;
    /// the rate, which the writer sets, did not move). A continuation that blocked would hold up only
    /// the answers after it in its share, never the writer.
    /// </summary>
    public static void Answer(List<WorkItem> succeeded)
    {
        // The list is the group's own and nothing changes it after this.
        var shares = Math.Min(Environment.ProcessorCount, succeeded.Count);
        for (var share = 0; share < shares; share++)
        {
            var (from, to) = (succeeded.Count * share / shares, succeeded.Count * (share + 1) / shares);
            ThreadPool.UnsafeQueueUserWorkItem(static state =>
            {
                for (var i = state.From; i < state.To; i++)
                {
                    state.Done[i].Complete();
                }
            }, (Done: succeeded, From: from, To: to), preferLocal: false);
        }
    }

    /// <summary>Answers every unit of <paramref name="items"/> with the same failure: none of them is acknowledged.</summary>
    public static void FailAll(IEnumerable<WorkItem> items, Exception failure)
    {
        foreach (var item in items)
        {
            item.Fail(failure);
        }
    }

    public abstract Task RunAsync(IStoreSession session);

    public abstract void Complete();

    public abstract void Fail(Exception exception);

    public abstract void Cancel();
}

/// <remarks>
/// The caller's continuation runs where its task completes: a success completes on one of
/// <see cref="WorkItem.Answer"/>'s work items; a failure or cancellation, which the writer finds in the middle
/// of its work, is completed on a work item of its own, so no caller's code ever runs on the writer.
/// </remarks>
internal sealed class WorkItem<T>(Func<IStoreSession, Task<T>> work, CancellationToken cancellationToken) : WorkItem(cancellationToken)
{
    private readonly TaskCompletionSource<T> _completion = new();
    private T? _result;

    public Task<T> Task => _completion.Task;

    public override async Task RunAsync(IStoreSession session) => _result = await work(session).ConfigureAwait(false);

    public override void Complete()
    {
        StoreSession.RunCommitted(Committed);
        _completion.TrySetResult(_result!);
    }

    public override void Fail(Exception exception) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Completion.TrySetException(state.Exception), (Completion: _completion, Exception: exception), preferLocal: false);

    public override void Cancel() =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Completion.TrySetCanceled(state.Token), (Completion: _completion, Token: CancellationToken), preferLocal: false);
}

