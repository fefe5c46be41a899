using Procurement.Domain.Allocations;

namespace Procurement.Domain.Tests;

/// <summary>Rules of docs/design.md, "Admission", on hand-built pools.</summary>
public class AdmissionPolicyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
    private long _seq;

    private HeldAllocation Held(string contract, long units, int minute) => new(++_seq, $"a{_seq}", contract, units, T0.AddMinutes(minute));

    private static ContractStanding K(string id, long reserved, long burst, int priority = 0, bool preempt = false, bool active = true) =>
        new(id, priority, preempt, reserved, burst, active);

    [Fact]
    public void Ledger_KeepsItsTotals_AsAllocationsAreAdmittedAndRemoved()
    {
        var a = Held("k", 3, 0);
        var b = Held("b", 4, 1);
        var pool = new PoolLedger(20, [a, b], [K("k", 2, 10), K("b", 0, 10)]);
        var c = Held("k", 5, 2);
        pool.Admit(c);
        Assert.Equal((12L, 8L, 8L, 4L), (pool.Held, pool.Free, pool.UnitsOf("k"), pool.UnitsOf("b")));
        Assert.True(pool.IsBorrowing("k"));

        // Removing one it does not hold changes nothing; the others leave with their units.
        pool.Remove([a, b, Held("k", 7, 3)]);
        Assert.Equal((5L, 15L, 5L, 0L), (pool.Held, pool.Free, pool.UnitsOf("k"), pool.UnitsOf("b")));
        Assert.Equal([c], pool.Active);
        Assert.Equal(pool.Active.Sum(x => x.Units), pool.Held);
    }

    [Fact]
    public void Ledger_KeptBetweenDecisions_RemovesByIdAndLearnsANewContractsStanding()
    {
        var a = Held("k", 3, 0);
        var pool = new PoolLedger(10, [a], [K("k", 0, 10)]);
        // A contract it does not know may hold nothing, until its standing is added.
        Assert.False(pool.HasStanding("new"));
        Assert.Equal(AdmissionDecision.ContractNotActive, AdmissionPolicy.Decide(pool, "new", 1, false).Reason);
        pool.AddStanding(K("new", 2, 0));
        Assert.True(pool.HasStanding("new"));
        Assert.Equal(AdmissionOutcome.Admit, AdmissionPolicy.Decide(pool, "new", 2, false).Outcome);

        pool.Remove(a.AllocationId);
        pool.Remove(a.AllocationId);
        Assert.Equal((0L, 10L, 0L), (pool.Held, pool.Free, pool.UnitsOf("k")));
        Assert.Empty(pool.Active);
    }

    [Fact]
    public void Decide_AboveReservationPlusBurst_IsRefused()
    {
        var pool = new PoolLedger(100, [Held("k", 8, 0)], [K("k", 5, 5)]);
        var d = AdmissionPolicy.Decide(pool, "k", 3, waitIfUnavailable: true);
        Assert.Equal(AdmissionOutcome.Refuse, d.Outcome);
        Assert.Equal(AdmissionDecision.BurstLimitExceeded, d.Reason);
        Assert.Equal(AdmissionOutcome.Admit, AdmissionPolicy.Decide(pool, "k", 2, false).Outcome);
    }

    [Fact]
    public void Decide_ContractNotActive_IsRefused()
    {
        var pool = new PoolLedger(100, [], [K("k", 50, 0, active: false)]);
        Assert.Equal(AdmissionDecision.ContractNotActive, AdmissionPolicy.Decide(pool, "k", 1, true).Reason);
    }

    [Fact]
    public void Decide_PoolNotInEntitlements_IsBurstLimitExceeded()
    {
        var pool = new PoolLedger(100, [], [K("k", 0, 0)]);
        Assert.Equal(AdmissionDecision.BurstLimitExceeded, AdmissionPolicy.Decide(pool, "k", 1, true).Reason);
    }

    [Fact]
    public void Decide_GuaranteedWithFreeCapacity_AdmitsWithoutPreemption()
    {
        var pool = new PoolLedger(10, [Held("b", 5, 0)], [K("k", 5, 0), K("b", 0, 10)]);
        var d = AdmissionPolicy.Decide(pool, "k", 5, false);
        Assert.Equal(AdmissionOutcome.Admit, d.Outcome);
        Assert.True(d.Guaranteed);
        Assert.Empty(d.Victims);
    }

    [Fact]
    public void Decide_GuaranteedWithoutFreeCapacity_PreemptsLowestPriorityBorrowerFirst()
    {
        var low = Held("low", 4, 0);
        var high = Held("high", 4, 5);
        var pool = new PoolLedger(8, [low, high], [K("k", 4, 0), K("low", 0, 10, priority: 1), K("high", 0, 10, priority: 9)]);
        var d = AdmissionPolicy.Decide(pool, "k", 4, false);
        Assert.Equal(AdmissionOutcome.Admit, d.Outcome);
        Assert.Equal([low], d.Victims);
    }

    [Fact]
    public void Decide_GuaranteedMayPreemptHigherPriorityBorrowers()
    {
        // Within its reservation, a request takes from any borrower, whatever its priority.
        var high = Held("high", 8, 0);
        var pool = new PoolLedger(8, [high], [K("k", 4, 0, priority: 0), K("high", 0, 10, priority: 99)]);
        Assert.Equal([high], AdmissionPolicy.Decide(pool, "k", 4, false).Victims);
    }

    [Fact]
    public void Decide_SamePriority_PreemptsMostRecentlyAdmittedFirst()
    {
        var older = Held("b", 3, 0);
        var newer = Held("c", 3, 10);
        var pool = new PoolLedger(6, [older, newer], [K("k", 3, 0), K("b", 0, 10), K("c", 0, 10)]);
        Assert.Equal([newer], AdmissionPolicy.Decide(pool, "k", 3, false).Victims);
    }

    [Fact]
    public void Decide_SameAdmissionTime_PreemptsHigherAllocationSequenceFirst()
    {
        var first = Held("b", 3, 0);
        var second = Held("b", 3, 0);
        var pool = new PoolLedger(6, [first, second], [K("k", 3, 0), K("b", 0, 10)]);
        Assert.Equal([second], AdmissionPolicy.Decide(pool, "k", 3, false).Victims);
    }

    [Fact]
    public void Decide_NeverPreemptsAContractWithinItsReservation()
    {
        // "r" holds exactly its reservation, so it is not borrowing and is never a victim.
        var r = Held("r", 5, 20);
        var b = Held("b", 5, 0);
        var pool = new PoolLedger(10, [r, b], [K("k", 5, 0), K("r", 5, 5), K("b", 0, 10)]);
        Assert.Equal([b], AdmissionPolicy.Decide(pool, "k", 5, false).Victims);
    }

    [Fact]
    public void Decide_MinimalVictimSet_PutsBackVictimsNotNeeded()
    {
        // Order of choice: small (newest) 2, then big 6: 2 + 6 ≥ 6 needed; walking back, the small one
        // is not needed once the big one is taken, so only the big one goes.
        var big = Held("b", 6, 0);
        var small = Held("b", 2, 10);
        var pool = new PoolLedger(8, [big, small], [K("k", 6, 0), K("b", 0, 10)]);
        var d = AdmissionPolicy.Decide(pool, "k", 6, false);
        Assert.Equal([big], d.Victims);
    }

    [Fact]
    public void Decide_MinimalSet_KeepsEveryVictimThatIsNeeded()
    {
        var a = Held("b", 2, 0);
        var b = Held("b", 2, 1);
        var c = Held("b", 2, 2);
        var pool = new PoolLedger(6, [a, b, c], [K("k", 4, 0), K("b", 0, 10)]);
        Assert.Equal([c, b], AdmissionPolicy.Decide(pool, "k", 4, false).Victims);
    }

    [Fact]
    public void Decide_RequestStraddlingTheReservation_IsBurst()
    {
        // Holds 3 of a reservation of 4; asking 2 crosses it, so it is burst and may not preempt.
        var k = Held("k", 3, 0);
        var b = Held("b", 5, 1);
        var pool = new PoolLedger(8, [k, b], [K("k", 4, 4), K("b", 0, 10)]);
        var d = AdmissionPolicy.Decide(pool, "k", 2, waitIfUnavailable: false);
        Assert.False(d.Guaranteed);
        Assert.Equal(AdmissionOutcome.Refuse, d.Outcome);
        Assert.Equal(AdmissionDecision.CapacityUnavailable, d.Reason);
    }

    [Fact]
    public void Decide_BurstWithFreeCapacity_BorrowsIdleReservations()
    {
        // "r" reserves 8 but holds nothing: burst may use that idle capacity.
        var pool = new PoolLedger(10, [], [K("k", 0, 10), K("r", 8, 0)]);
        var d = AdmissionPolicy.Decide(pool, "k", 10, false);
        Assert.Equal(AdmissionOutcome.Admit, d.Outcome);
        Assert.False(d.Guaranteed);
    }

    [Fact]
    public void Decide_BurstWithPreemptFlag_TakesOnlyStrictlyLowerPriorityBorrowers()
    {
        var same = Held("same", 4, 10);
        var lower = Held("lower", 4, 0);
        var pool = new PoolLedger(8, [same, lower],
            [K("k", 0, 10, priority: 5, preempt: true), K("same", 0, 10, priority: 5), K("lower", 0, 10, priority: 4)]);
        var d = AdmissionPolicy.Decide(pool, "k", 4, false);
        Assert.Equal(AdmissionOutcome.Admit, d.Outcome);
        Assert.Equal([lower], d.Victims);
        Assert.Equal(AllocationCause.HigherPriorityRequest, d.VictimCause);
    }

    [Fact]
    public void Decide_BurstWithPreemptFlag_NotEnoughLowerPriority_PreemptsNothingAndQueues()
    {
        var lower = Held("lower", 2, 0);
        var same = Held("same", 6, 0);
        var pool = new PoolLedger(8, [lower, same], [K("k", 0, 10, priority: 5, preempt: true), K("lower", 0, 10, 1), K("same", 0, 10, 5)]);
        var d = AdmissionPolicy.Decide(pool, "k", 4, waitIfUnavailable: true);
        Assert.Equal(AdmissionOutcome.Queue, d.Outcome);
        Assert.Empty(d.Victims);
    }

    [Fact]
    public void Decide_BurstWithoutPreemptFlag_QueuesOrRefuses()
    {
        var pool = new PoolLedger(4, [Held("lower", 4, 0)], [K("k", 0, 10, priority: 9), K("lower", 0, 10, 1)]);
        Assert.Equal(AdmissionOutcome.Queue, AdmissionPolicy.Decide(pool, "k", 1, true).Outcome);
        var refused = AdmissionPolicy.Decide(pool, "k", 1, false);
        Assert.Equal(AdmissionOutcome.Refuse, refused.Outcome);
        Assert.Equal(AdmissionDecision.CapacityUnavailable, refused.Reason);
    }

    [Fact]
    public void Decide_BorrowingIsJudgedAtTheDecision_SoABorrowersWholeAllocationsAreCandidates()
    {
        // "b" reserves 4 and holds 6 in one allocation: it is borrowing, so that allocation may go.
        var whole = Held("b", 6, 0);
        var pool = new PoolLedger(6, [whole], [K("k", 2, 0), K("b", 4, 10)]);
        Assert.Equal([whole], AdmissionPolicy.Decide(pool, "k", 2, false).Victims);
    }

    [Fact]
    public void RetryOrder_IsHighestPriorityThenOldest()
    {
        var pool = new PoolLedger(0, [], [K("a", 0, 9, priority: 1), K("b", 0, 9, priority: 5)]);
        var q1 = new QueuedRequest(1, "q1", "a", 1, T0);
        var q2 = new QueuedRequest(2, "q2", "b", 1, T0.AddMinutes(5));
        var q3 = new QueuedRequest(3, "q3", "b", 1, T0.AddMinutes(1));
        var q4 = new QueuedRequest(4, "q4", "a", 1, T0.AddMinutes(1));
        Assert.Equal(["q3", "q2", "q1", "q4"], AdmissionPolicy.RetryOrder([q1, q2, q3, q4], pool).Select(q => q.AllocationId));
    }

    [Fact]
    public void VictimsForCapacity_TakesBorrowersInRuleTwoOrderUntilHeldFits()
    {
        var reserved = Held("r", 4, 30);
        var lowOld = Held("low", 2, 0);
        var lowNew = Held("low", 2, 10);
        var high = Held("high", 2, 20);
        // Capacity cut to 7 with 10 held: 3 units must go; "low" (priority 1) before "high", newest first.
        var pool = new PoolLedger(7, [reserved, lowOld, lowNew, high], [K("r", 4, 0), K("low", 0, 10, 1), K("high", 0, 10, 9)]);
        Assert.Equal([lowNew, lowOld], AdmissionPolicy.VictimsForCapacity(pool));
    }

    [Fact]
    public void VictimsForCapacity_HeldFits_TakesNothing()
    {
        var pool = new PoolLedger(10, [Held("b", 10, 0)], [K("b", 0, 10)]);
        Assert.Empty(AdmissionPolicy.VictimsForCapacity(pool));
    }
}
